//! Taking labs over after a restart of the platform (an upgrade, a
//! configuration change, a crash). Sandboxes outlive the platform's
//! process, so the new process finds each active lab's sandbox again (pid
//! and start time, control group, the user's network namespace, port),
//! reconnects its proxy route and idle clock, and reports it running only
//! once it answers: every lab is probed at once, and one that does not
//! answer is starting until it does, or fails after the start timeout. A
//! launch the old process left half-way ends running or failed; a stop it
//! left half-way is finished; a lab whose sandbox ended meanwhile is failed
//! with the exit its supervisor recorded. What ended labs left behind
//! (control groups, SAMP hubs, network namespaces) is removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use insitu_domain::{LabState, UserId};
use insitu_launcher::listen::{Listeners, PortHolder};
use insitu_store::{LabRecord, StoreError};

use super::{
    Labs, LaunchTicket, Probe, StartFailure, ToolAccess, UserNetwork, Waited, answers, describe,
};

/// Who serves each lab's port (sandbox pid, port), reading each network
/// namespace's listeners once for all the labs in it.
fn port_holders(sandboxes: &[Option<(u32, u16)>]) -> Vec<Option<(PortHolder, u16)>> {
    use std::os::unix::fs::MetadataExt;
    let mut by_network: HashMap<u64, Listeners> = HashMap::new();
    sandboxes
        .iter()
        .map(|s| {
            let (pid, port) = (*s)?;
            let holder = match std::fs::metadata(format!("/proc/{pid}/ns/net")) {
                Ok(ns) => by_network
                    .entry(ns.ino())
                    .or_insert_with(|| Listeners::of(pid))
                    .holder(pid, port),
                Err(_) => PortHolder::Nobody,
            };
            Some((holder, port))
        })
        .collect()
}

/// A lab whose sandbox was found again, before it was probed.
struct Found {
    lab: LabRecord,
    /// Where it answers: its base URL and readiness path.
    path: String,
    network: Option<Arc<UserNetwork>>,
}

impl Labs {
    /// After a restart: takes over the labs of the store that are active
    /// (see the module). `readiness` gives a datalab's readiness path, by
    /// name. Returns once every lab found has been probed once; those that
    /// did not answer are waited for in the background.
    pub async fn adopt_all(
        self: &Arc<Self>,
        readiness: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<(), StoreError> {
        let active = self.store.labs_in_states(&LabState::ACTIVE).await?;
        let users: Vec<UserId> = active.iter().map(|l| l.user_id.clone()).collect();
        self.samp.adopt_all(&users).await;
        let mut found = Vec::new();
        for lab in active {
            if self.adopt_slurm(&lab, readiness).await? {
                continue;
            }
            if let Some(f) = self.find_again(lab, readiness).await? {
                found.push(f);
            }
        }
        let sandboxes: Vec<Option<(u32, u16)>> = found
            .iter()
            .map(|f| {
                let pid = f.lab.pid.and_then(|p| u32::try_from(p).ok())?;
                Some((pid, f.lab.port.and_then(|p| u16::try_from(p).ok())?))
            })
            .collect();
        let holders = tokio::task::spawn_blocking(move || port_holders(&sandboxes))
            .await
            .unwrap_or_default();
        let mut probes = tokio::task::JoinSet::new();
        for (i, f) in found.iter().enumerate() {
            let Some(&(holder, port)) = holders.get(i).and_then(Option::as_ref) else {
                continue;
            };
            let (path, network) = (f.path.clone(), f.network.clone());
            // With the credential the tool was started with, kept beside it.
            let access = ToolAccess::load(&self.secret_path(&f.lab.id))
                .ok()
                .flatten();
            probes.spawn(async move {
                let authorization = access.as_ref().and_then(ToolAccess::authorization);
                let probe = answers(
                    holder,
                    port,
                    &path,
                    network.as_deref(),
                    authorization.as_deref(),
                );
                (i, matches!(probe.await, Ok(Probe::Ready)))
            });
        }
        let mut answered = vec![false; found.len()];
        while let Some(probe) = probes.join_next().await {
            if let Ok((i, yes)) = probe
                && let Some(a) = answered.get_mut(i)
            {
                *a = yes;
            }
        }
        for (f, answered) in found.into_iter().zip(answered) {
            self.resume(f, answered).await?;
        }
        self.prune().await
    }

    /// Finds an active lab's sandbox again and holds it; `None` when the
    /// lab was settled on the spot (its stop finished, or its sandbox gone).
    async fn find_again(
        self: &Arc<Self>,
        mut lab: LabRecord,
        readiness: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Option<Found>, StoreError> {
        if lab.state == LabState::Stopping {
            // A stop the old process accepted and did not finish.
            self.end_process(&lab, Duration::from_secs(2)).await;
            self.end_stopping(&mut lab).await?;
            return Ok(None);
        }
        let Some(process) = self.find_process(&lab) else {
            let reason = if lab.pid.is_none() {
                "the platform restarted before the lab's tool started; launch it again".to_owned()
            } else {
                self.recorded_reason(&lab, "ended while the platform was down")
            };
            self.end_process(&lab, Duration::ZERO).await;
            let from = [lab.state];
            self.end(&mut lab, &from, LabState::Failed, reason).await?;
            tracing::info!(lab = %lab.id, reason = ?lab.reason, "lab ended while the platform was down");
            return Ok(None);
        };
        tracing::info!(lab = %lab.id, pid = process.pid(), state = %lab.state, "lab re-adopted after restart");
        lab.pid = Some(i64::from(process.pid()));
        lab.pid_start = i64::try_from(process.start_ticks()).ok();
        if let Ok(mut procs) = self.procs.lock() {
            procs.insert(lab.id.clone(), process);
        }
        let network = match self.network_of(&lab.user_id).await {
            Ok(n) => n,
            Err(e) => {
                self.end_process(&lab, Duration::from_secs(2)).await;
                let from = [lab.state];
                let reason = format!("after the platform restarted, {e}");
                self.end(&mut lab, &from, LabState::Failed, reason).await?;
                return Ok(None);
            }
        };
        // A launch the old process left after starting the sandbox and
        // before recording it: recorded now, and waited for.
        if lab.state == LabState::Pending
            && !self
                .transition(&mut lab, &[LabState::Pending], LabState::Starting)
                .await?
        {
            self.end_process(&lab, Duration::from_secs(2)).await;
            return Ok(None);
        }
        let path = format!(
            "/labs/{}{}",
            lab.id,
            readiness(&lab.datalab).unwrap_or_else(|| "/".to_owned())
        );
        Ok(Some(Found { lab, path, network }))
    }

    /// A found lab after its first probe: running again when it answered
    /// (and was running), otherwise starting until it answers.
    async fn resume(self: &Arc<Self>, f: Found, answered: bool) -> Result<(), StoreError> {
        let Found {
            mut lab,
            path,
            network,
        } = f;
        if answered && lab.state == LabState::Running {
            self.resume_activity(&lab).await;
            self.set_route(&lab, LabState::Running, network);
            return Ok(());
        }
        if lab.state == LabState::Running
            && !self
                .transition(&mut lab, &[LabState::Running], LabState::Starting)
                .await?
        {
            return Ok(());
        }
        self.set_route(&lab, LabState::Starting, network.clone());
        let ticket = self.register_launch(&lab.id);
        let me = Arc::clone(self);
        tokio::spawn(async move { me.await_answer(lab, path, network, ticket).await });
        Ok(())
    }

    /// Waits, after a restart, for a lab that did not answer at once.
    async fn await_answer(
        self: Arc<Self>,
        mut lab: LabRecord,
        path: String,
        network: Option<Arc<UserNetwork>>,
        mut ticket: LaunchTicket,
    ) {
        let deadline = tokio::time::Instant::now() + self.cfg.start_timeout;
        let waited = self
            .wait_ready(&lab, &path, network.as_deref(), deadline, &mut ticket.stop)
            .await;
        let failure = match waited {
            Ok(()) => {
                self.resume_activity(&lab).await;
                match self
                    .transition(&mut lab, &[LabState::Starting], LabState::Running)
                    .await
                {
                    Ok(true) => {
                        self.set_route(&lab, LabState::Running, network);
                        tracing::info!(lab = %lab.id, "re-adopted lab answers again");
                    }
                    Ok(false) => self.let_go(&mut lab, &ticket).await,
                    Err(e) => tracing::warn!(lab = %lab.id, error = %e, "could not record a lab"),
                }
                return;
            }
            Err(Waited::Stopped) => {
                self.let_go(&mut lab, &ticket).await;
                return;
            }
            Err(Waited::Exited(code)) => self.tool_memory_kill(&lab).await.unwrap_or_else(|| {
                format!(
                    "the tool exited ({}) after the platform restarted",
                    describe(code)
                )
            }),
            Err(Waited::TimedOut { answered }) => StartFailure::NotReadyAfterRestart {
                secs: self.cfg.start_timeout.as_secs(),
                answered,
            }
            .to_string(),
            Err(Waited::PortTaken(port)) => StartFailure::PortTaken(port).to_string(),
        };
        self.end_process(&lab, Duration::from_secs(2)).await;
        match self
            .end(&mut lab, &[LabState::Starting], LabState::Failed, failure)
            .await
        {
            Ok(true) => {
                tracing::warn!(lab = %lab.id, reason = ?lab.reason, "re-adopted lab failed")
            }
            Ok(false) => self.let_go(&mut lab, &ticket).await,
            Err(e) => tracing::error!(lab = %lab.id, error = %e, "could not record a failed lab"),
        }
    }

    /// Removes what ended labs of this platform left behind while it was
    /// down: their control groups (killing any process still in one), the
    /// groups of SAMP hubs no longer running, and the network namespaces of
    /// users with no active lab. Groups and namespaces this store does not
    /// know are another platform's and are left alone.
    async fn prune(&self) -> Result<(), StoreError> {
        if let Some(cgroups) = self.cgroups() {
            for name in cgroups.group_names() {
                let Ok(id) = name.parse::<insitu_domain::LabId>() else {
                    continue;
                };
                let ended = self
                    .store
                    .lab(&id)
                    .await?
                    .is_some_and(|l| !l.state.is_active());
                if ended && self.container_of(&id).is_some() {
                    self.remove_left_container(&id).await;
                } else if ended {
                    let (c, n) = (cgroups.clone(), name.clone());
                    let _ = tokio::task::spawn_blocking(move || c.kill_and_remove(&n)).await;
                }
            }
        }
        if self.cfg.network_per_user {
            let names: Vec<String> = std::fs::read_dir(insitu_launcher::netns::NETNS_DIR)
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            let mut users: Vec<UserId> = Vec::new();
            for lab in self
                .store
                .labs_in_states(&[LabState::Stopped, LabState::Failed])
                .await?
            {
                if !users.contains(&lab.user_id) {
                    users.push(lab.user_id);
                }
            }
            for user in users {
                if names.contains(&Self::network_name(&user)) {
                    self.delete_network(&user).await;
                }
            }
        }
        Ok(())
    }
}
