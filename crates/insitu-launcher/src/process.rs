//! Starting, finding again and stopping sandboxes.
//!
//! A sandbox is a `bwrap` process started in its own process group with its
//! output appended to a log file, so it outlives a restart of the platform.
//! With `--unshare-pid`, bwrap's child is the init of the sandbox's pid
//! namespace: when it dies the kernel ends every process inside, so stopping
//! that one process stops the whole tree.

use std::fs::OpenOptions;
use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::limits::{Cgroups, Limits};
use crate::netns::NetNs;
use crate::sandbox::{SandboxSpec, bwrap_args};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("bubblewrap ({0}) is not installed")]
    NoBwrap(String),
    #[error("cannot open the log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the sandbox: {0}")]
    Spawn(std::io::Error),
    #[error("cannot set the sandbox's resource limits: {0}")]
    Limits(std::io::Error),
    #[error(transparent)]
    Network(#[from] crate::netns::NetNsError),
    #[error("{0}")]
    Container(String),
}

/// Where a sandbox runs beyond what its [`SandboxSpec`] says.
#[derive(Debug, Default, Clone, Copy)]
pub struct Placement<'a> {
    /// A control group of its own, named by the string, with these limits.
    pub cgroup: Option<(&'a Cgroups, &'a str, Limits)>,
    /// The network namespace it joins (the spec should then share the
    /// network, so that bubblewrap makes no namespace of its own).
    pub netns: Option<&'a NetNs>,
}

/// How a sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Running,
    /// Ended; the code when known (not known for an adopted process).
    Exited(Option<i32>),
}

/// A started (or re-adopted) sandbox.
#[derive(Debug)]
pub struct SandboxProcess {
    /// The outer bwrap process.
    pub pid: u32,
    /// Its start time in clock ticks since boot, to tell it from a later
    /// process that reuses the pid.
    pub start_ticks: u64,
    pub log_path: PathBuf,
    child: Option<std::process::Child>,
    /// Its control group, when it has one.
    cgroup: Option<(Cgroups, String)>,
}

impl SandboxProcess {
    /// Starts `spec` under bubblewrap; output goes to `log_path`.
    pub fn start(
        bwrap: &Path,
        spec: &SandboxSpec,
        log_path: &Path,
    ) -> Result<SandboxProcess, LaunchError> {
        SandboxProcess::start_in(bwrap, spec, log_path, Placement::default())
    }

    /// Starts `spec` under bubblewrap in a control group and a network
    /// namespace. With a control group, the sandbox starts blocked until its
    /// processes have been moved into the group, so the tool never runs
    /// outside its limits.
    pub fn start_in(
        bwrap: &Path,
        spec: &SandboxSpec,
        log_path: &Path,
        placement: Placement<'_>,
    ) -> Result<SandboxProcess, LaunchError> {
        if !bwrap.exists() {
            return Err(LaunchError::NoBwrap(bwrap.display().to_string()));
        }
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LaunchError::Log {
                path: log_path.display().to_string(),
                source,
            })?;
        }
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .map_err(|source| LaunchError::Log {
                    path: log_path.display().to_string(),
                    source,
                })
        };
        let (out, err) = (open()?, open()?);
        let mut cmd = std::process::Command::new(bwrap);
        // What bubblewrap reads on its stdin before the tool may run: the
        // private variables (it reads them while parsing its arguments,
        // before it forks), or a byte its `--block-fd` waits for. Written
        // once the sandbox is in its control group.
        let private = spec.private_env.args_data();
        let mut gate = None;
        if let Some((cgroups, name, limits)) = placement.cgroup {
            cgroups.create(name, &limits).map_err(LaunchError::Limits)?;
        }
        if !private.is_empty() {
            let (reader, writer) = std::io::pipe().map_err(LaunchError::Spawn)?;
            cmd.stdin(reader);
            gate = Some((writer, private));
        } else if placement.cgroup.is_some() {
            let (reader, writer) = std::io::pipe().map_err(LaunchError::Spawn)?;
            cmd.args(["--block-fd", "0"]).stdin(reader);
            gate = Some((writer, b"1".to_vec()));
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.args(bwrap_args(spec))
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let Some((uid, gid)) = spec.run_as {
            // Dropping from root also drops supplementary groups.
            cmd.uid(uid).gid(gid);
        }
        let child = match placement.netns {
            Some(ns) => ns.run(move || cmd.spawn())?,
            None => cmd.spawn(),
        }
        .map_err(LaunchError::Spawn)?;
        let pid = child.id();
        let start_ticks = start_ticks(pid).unwrap_or(0);
        let mut process = SandboxProcess {
            pid,
            start_ticks,
            log_path: log_path.to_owned(),
            child: Some(child),
            cgroup: placement
                .cgroup
                .map(|(cgroups, name, _)| (cgroups.clone(), name.to_owned())),
        };
        if let Some((cgroups, name)) = process.cgroup.clone() {
            // The parent first: whatever it forks from now on is born in the
            // group; then what it forked before.
            let mut moved = cgroups.join(&name, pid);
            for p in descendants(pid) {
                if moved.is_ok() {
                    moved = cgroups.join(&name, p);
                }
            }
            if let Err(e) = moved {
                signal(pid, Signal::KILL);
                let _ = process.child.as_mut().map(std::process::Child::wait);
                let _ = cgroups.remove(&name);
                return Err(LaunchError::Limits(e));
            }
        }
        if let Some((mut writer, data)) = gate {
            use std::io::Write;
            // An error means bwrap already ended; its status will say so.
            // Dropping the writer closes the pipe: the end of `--args`.
            let _ = writer.write_all(&data);
        }
        Ok(process)
    }

    /// Finds a sandbox again after a platform restart; `None` when that
    /// process is gone (or the pid now belongs to another process).
    pub fn adopt(pid: u32, start: u64, log_path: &Path) -> Option<SandboxProcess> {
        SandboxProcess::adopt_in(pid, start, log_path, None)
    }

    /// [`SandboxProcess::adopt`] for a sandbox started in a control group.
    pub fn adopt_in(
        pid: u32,
        start: u64,
        log_path: &Path,
        cgroup: Option<(&Cgroups, &str)>,
    ) -> Option<SandboxProcess> {
        (start_ticks(pid)? == start && comm(pid).as_deref() == Some("bwrap")).then(|| {
            SandboxProcess {
                pid,
                start_ticks: start,
                log_path: log_path.to_owned(),
                child: None,
                cgroup: cgroup.map(|(c, n)| (c.clone(), n.to_owned())),
            }
        })
    }

    /// Whether the kernel killed a process of the sandbox for exceeding its
    /// memory limit.
    pub fn out_of_memory(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(|(c, name)| c.oom_kills(name) > 0)
    }

    /// Bytes of memory the sandbox uses now, where its group accounts it.
    pub fn memory_usage(&self) -> Option<u64> {
        let (c, name) = self.cgroup.as_ref()?;
        c.memory_usage(name)
    }

    /// Kills whatever is left in the sandbox's control group and removes the
    /// group.
    fn release_cgroup(&self) {
        if let Some((c, name)) = &self.cgroup
            && !c.kill_and_remove(name)
        {
            tracing::warn!(group = %name, "a sandbox's control group could not be removed");
        }
    }

    /// Whether the sandbox still runs; reaps it when it is our child.
    pub fn status(&mut self) -> ExitStatus {
        if let Some(child) = &mut self.child {
            return match child.try_wait() {
                Ok(None) => ExitStatus::Running,
                Ok(Some(s)) => ExitStatus::Exited(s.code()),
                Err(_) => ExitStatus::Exited(None),
            };
        }
        if start_ticks(self.pid) == Some(self.start_ticks) && !is_zombie(self.pid) {
            ExitStatus::Running
        } else {
            ExitStatus::Exited(None)
        }
    }

    /// Stops the whole process tree: SIGTERM to the sandbox's init, SIGKILL
    /// after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if self.status() != ExitStatus::Running {
            // Never signal a pid that may already belong to someone else.
            self.release_cgroup();
            return;
        }
        // The sandbox's init ignores SIGTERM (it is pid 1 of its namespace),
        // so the tools below it get the polite request.
        for init in children(self.pid) {
            for tool in children(init) {
                signal(tool, Signal::TERM);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if self.status() != ExitStatus::Running {
                self.release_cgroup();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for p in children(self.pid) {
            signal(p, Signal::KILL);
        }
        signal(self.pid, Signal::KILL);
        for _ in 0..100 {
            if self.status() != ExitStatus::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.release_cgroup();
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        log_tail(&self.log_path, n)
    }
}

/// The last `n` lines of a log file (reading at most its last 256 KiB).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn signal(pid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(p, sig);
    }
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let close = stat.rfind(')')?;
    Some(
        stat[close + 2..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    // Field 22 of /proc/PID/stat; index 19 after the name.
    stat_fields(pid)?.get(19)?.parse().ok()
}

pub(crate) fn is_zombie(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.first().cloned())
        .is_some_and(|s| s == "Z" || s == "X")
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Children of a process, their children, and so on.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children(p) {
            if !found.contains(&c) {
                found.push(c);
                queue.push(c);
            }
        }
    }
    found
}

/// Direct children of a process: from the kernel's list per thread where
/// it keeps one, else by scanning every process's parent.
fn children(pid: u32) -> Vec<u32> {
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        let mut found = Vec::new();
        let mut listed = false;
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                listed = true;
                found.extend(
                    list.split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        if listed {
            return found;
        }
    }
    scan_children(pid)
}

fn scan_children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat_fields(*p).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid))
        .collect()
}
