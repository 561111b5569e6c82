//! The seam between labs and their launchers: a datalab with an image
//! (`launch.image`) runs in an OCI container (podman), every other one in
//! a sandbox. Both get the same workspace, volumes, network, control group,
//! secret and readiness check; [`LabProcess`] is either, and the lab
//! service treats them alike.
//!
//! A container lab keeps its container's name beside its log
//! (`labs/<id>/container`), which is how a restarted platform knows to
//! adopt a container (by the pid and start time of its first process, kept
//! in the lab's record like a sandbox's) and how its log is read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use insitu_domain::LabId;
use insitu_launcher::{
    ContainerNetwork, ContainerProcess, ContainerSpec, ExitStatus, LaunchError, MemoryKill,
    Placement, SandboxEnd, SandboxProcess, SandboxSpec,
};

use super::Labs;

/// A lab's running process: a bubblewrap sandbox or a podman container.
#[derive(Debug)]
pub enum LabProcess {
    Sandbox(SandboxProcess),
    Container(ContainerProcess),
}

impl LabProcess {
    /// The process whose tree (and network namespace) is the lab: the
    /// outer bwrap, or the container's first process.
    pub fn pid(&self) -> u32 {
        match self {
            LabProcess::Sandbox(p) => p.pid,
            LabProcess::Container(c) => c.pid,
        }
    }

    pub fn start_ticks(&self) -> u64 {
        match self {
            LabProcess::Sandbox(p) => p.start_ticks,
            LabProcess::Container(c) => c.start_ticks,
        }
    }

    pub fn status(&mut self) -> ExitStatus {
        match self {
            LabProcess::Sandbox(p) => p.status(),
            LabProcess::Container(c) => c.status(),
        }
    }

    /// How the lab ended; `None` while it runs. A container's exit code is
    /// known once [`LabProcess::settle`] asked podman.
    pub fn end(&mut self) -> Option<SandboxEnd> {
        match self {
            LabProcess::Sandbox(p) => p.end(),
            LabProcess::Container(c) => match c.status() {
                ExitStatus::Exited(code) => Some(SandboxEnd {
                    code,
                    at: None,
                    killed_for_memory: c.out_of_memory(),
                }),
                ExitStatus::Running => None,
            },
        }
    }

    /// Learns how an ended container exited (a sandbox's supervisor
    /// recorded it already).
    pub async fn settle(&mut self) {
        if let LabProcess::Container(c) = self
            && matches!(c.status(), ExitStatus::Exited(_))
        {
            c.exit_code().await;
        }
    }

    /// Memory kills in the lab since the last call (a sandbox names each;
    /// a container's count only in how it ended).
    pub fn memory_kills(&mut self) -> Vec<MemoryKill> {
        match self {
            LabProcess::Sandbox(p) => p.memory_kills(),
            LabProcess::Container(_) => Vec::new(),
        }
    }

    /// The memory limit of the lab's control group, where one is set.
    pub fn memory_limit(&self) -> Option<u64> {
        match self {
            LabProcess::Sandbox(p) => p.memory_limit(),
            LabProcess::Container(c) => c.memory_limit(),
        }
    }

    /// Stops the lab's whole process tree and removes its control group.
    pub async fn stop(&mut self, grace: Duration) {
        match self {
            LabProcess::Sandbox(p) => p.stop(grace).await,
            LabProcess::Container(c) => c.stop(grace).await,
        }
    }
}

/// The name of a lab's container.
pub fn container_name(lab_id: &LabId) -> String {
    format!("insitu-lab-{lab_id}")
}

impl Labs {
    /// Where a container lab notes its container's name.
    fn container_marker(&self, lab_id: &LabId) -> PathBuf {
        self.cfg
            .data_dir
            .join("labs")
            .join(lab_id.as_str())
            .join("container")
    }

    /// The container of a lab, when it runs in one.
    pub(super) fn container_of(&self, lab_id: &LabId) -> Option<String> {
        std::fs::read_to_string(self.container_marker(lab_id))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Starts a lab: its sandbox, or, for a datalab with an image, a
    /// container of that image with what the sandbox would have had.
    pub(super) async fn start_process(
        &self,
        lab_id: &LabId,
        sandbox: &SandboxSpec,
        image: Option<&str>,
        log: &Path,
        placement: Placement<'_>,
    ) -> Result<LabProcess, LaunchError> {
        let Some(image) = image else {
            return SandboxProcess::start_in(&self.cfg.bwrap, sandbox, log, placement)
                .map(LabProcess::Sandbox);
        };
        let name = container_name(lab_id);
        let network = match placement.netns {
            Some(ns) => ContainerNetwork::Namespace(ns.path().to_path_buf()),
            None => ContainerNetwork::Host,
        };
        let spec = ContainerSpec::from_sandbox(
            sandbox,
            name.clone(),
            image.to_owned(),
            network,
            log.to_path_buf(),
        )?;
        let marker = self.container_marker(lab_id);
        if let Some(dir) = marker.parent() {
            std::fs::create_dir_all(dir).map_err(LaunchError::Spawn)?;
        }
        std::fs::write(&marker, &name).map_err(LaunchError::Spawn)?;
        ContainerProcess::start(&self.cfg.podman, &spec, placement.cgroup)
            .await
            .map(LabProcess::Container)
    }

    /// Finds a lab's process again (after a restart, or started by
    /// another server process) from its recorded pid and start time; a
    /// sandbox started before those were recorded, from its status file.
    pub(super) fn adopt_process(
        &self,
        lab_id: &LabId,
        recorded: Option<(u32, u64)>,
        log: &Path,
    ) -> Option<LabProcess> {
        let cgroup = self.cgroups().map(|c| (c, lab_id.as_str()));
        match (self.container_of(lab_id), recorded) {
            (Some(name), Some((pid, start))) => {
                ContainerProcess::adopt(&self.cfg.podman, &name, pid, start, cgroup)
                    .map(LabProcess::Container)
            }
            (Some(_), None) => None,
            (None, Some((pid, start))) => {
                SandboxProcess::adopt_in(pid, start, log, cgroup).map(LabProcess::Sandbox)
            }
            (None, None) => SandboxProcess::adopt_recorded(log, cgroup).map(LabProcess::Sandbox),
        }
    }

    /// Removes the container an ended lab left (the platform was down when
    /// it ended), and what podman left of its control group.
    pub(super) async fn remove_left_container(&self, lab_id: &LabId) {
        let Some(name) = self.container_of(lab_id) else {
            return;
        };
        if let Err(e) = insitu_launcher::container::remove(&self.cfg.podman, &name).await {
            tracing::warn!(lab = %lab_id, error = %e, "cannot remove an ended lab's container");
        }
        if let Some(c) = self.cgroups() {
            let (c, id) = (c.clone(), lab_id.to_string());
            let _ = tokio::task::spawn_blocking(move || {
                c.kill_and_remove(&id);
                c.remove_elsewhere(&id);
            })
            .await;
        }
    }

    /// The last `lines` lines of a lab's log, as its tool wrote them.
    pub(super) fn read_log_tail(&self, lab_id: &LabId, lines: usize) -> Vec<String> {
        let path = self.log_path(lab_id);
        if self.container_of(lab_id).is_some() {
            insitu_launcher::container::log_tail(&path, lines)
        } else {
            insitu_launcher::process::log_tail(&path, lines)
        }
    }
}
