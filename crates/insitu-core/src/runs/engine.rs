//! The engine of a run as a process of the host, apart from the platform:
//! started in a process group of its own (so the platform's end leaves it
//! running), in the run's network namespace and control group, with its
//! output and log in the run's directory; found again after a restart by
//! its pid and start time; stopped with its whole tree.
//!
//! It starts behind a gate: a shell that waits for `go` on its standard
//! input, sent once it is in its control group, then becomes the engine,
//! so nothing of the run ever runs outside its group.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use insitu_launcher::{Cgroups, Limits, NetNs};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// The gate: waits for `go`, then becomes the engine (`$0 "$@"`).
const GATE: &str = r#"read -r go && [ "$go" = go ] && exec "$0" "$@"; exit 125"#;

/// The engine's program name as the kernel reports it once it runs.
const COMM: &str = "insitu-cwl";

/// What to start.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub dir: &'a Path,
    /// Where its standard output (the output object) goes.
    pub stdout: &'a Path,
    /// Where its standard error (its log) goes.
    pub stderr: &'a Path,
    pub netns: Option<&'a NetNs>,
    /// A control group of its own: the groups, its name and limits.
    pub cgroup: Option<(&'a Cgroups, &'a str, Limits)>,
}

/// A run's engine, started here or found again.
#[derive(Debug)]
pub struct EngineProcess {
    pub pid: u32,
    pub start_ticks: u64,
    /// The process, when this platform process started it (to reap it).
    child: Option<std::process::Child>,
    cgroup: Option<(Cgroups, String)>,
}

fn create(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl EngineProcess {
    /// Starts the engine (see the module); blocks for as long as a fork
    /// takes.
    pub fn start(l: &Launch<'_>) -> std::io::Result<EngineProcess> {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(GATE)
            .arg(l.program)
            .args(&l.args)
            .env_clear()
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .current_dir(l.dir)
            .stdin(Stdio::piped())
            .stdout(create(l.stdout)?)
            .stderr(create(l.stderr)?)
            .process_group(0);
        if let Some((cgroups, name, limits)) = &l.cgroup {
            cgroups.create(name, limits)?;
        }
        let cgroup = l
            .cgroup
            .as_ref()
            .map(|(c, n, _)| ((*c).clone(), (*n).to_owned()));
        let spawned = match l.netns {
            Some(ns) => ns
                .run(move || cmd.spawn())
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r),
            None => cmd.spawn(),
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if let Some((c, n)) = &cgroup {
                    let _ = c.remove(n);
                }
                return Err(e);
            }
        };
        let pid = child.id();
        if let Some((c, n)) = &cgroup
            && let Err(e) = c.join(n, pid)
        {
            let _ = child.kill();
            let _ = child.wait();
            let _ = c.remove(n);
            return Err(e);
        }
        let start_ticks = start_ticks(pid).unwrap_or(0);
        if let Some(mut gate) = child.stdin.take() {
            // An error means the shell already ended; its status says so.
            let _ = gate.write_all(b"go\n");
        }
        Ok(EngineProcess {
            pid,
            start_ticks,
            child: Some(child),
            cgroup,
        })
    }

    /// The engine of an earlier platform process, if it still runs (the
    /// same pid and start time, and the engine's program).
    pub fn adopt(pid: u32, start: u64, cgroup: Option<(&Cgroups, &str)>) -> Option<EngineProcess> {
        (start_ticks(pid) == Some(start) && !is_zombie(pid) && comm(pid).as_deref() == Some(COMM))
            .then(|| EngineProcess {
                pid,
                start_ticks: start,
                child: None,
                cgroup: cgroup.map(|(c, n)| (c.clone(), n.to_owned())),
            })
    }

    /// `None` while it runs; once it ended, its exit code when known.
    pub fn ended(&mut self) -> Option<Option<i32>> {
        if let Some(child) = &mut self.child {
            return match child.try_wait() {
                Ok(None) => None,
                Ok(Some(s)) => Some(s.code()),
                Err(_) => Some(None),
            };
        }
        if start_ticks(self.pid) == Some(self.start_ticks) && !is_zombie(self.pid) {
            None
        } else {
            Some(None)
        }
    }

    /// Ends the engine and everything it started: SIGTERM to its process
    /// group, SIGKILL to the whole tree after `grace`, then its control
    /// group and the containers it named after itself.
    pub async fn stop(&mut self, grace: Duration) {
        // The tree as it is now: a process that ignores SIGTERM is still
        // found after its parent ended.
        let tree: Vec<(u32, u64)> = descendants(self.pid)
            .into_iter()
            .filter_map(|p| Some((p, start_ticks(p)?)))
            .collect();
        let group = pid(self.pid);
        // The group's id is this engine's only while a process of the
        // group lives (the kernel reuses it only once the group is empty).
        let alive = |tree: &[(u32, u64)], me: &Self| {
            (start_ticks(me.pid) == Some(me.start_ticks))
                || tree.iter().any(|(p, s)| start_ticks(*p) == Some(*s))
        };
        if let Some(g) = group.filter(|_| alive(&tree, self)) {
            let _ = kill_process_group(g, Signal::TERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.ended().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Whatever is left: the group, and each process of the tree that
        // is still the same process.
        if let Some(g) = group.filter(|_| alive(&tree, self)) {
            let _ = kill_process_group(g, Signal::KILL);
        }
        for (p, start) in tree {
            if start_ticks(p) == Some(start)
                && let Some(p) = pid(p)
            {
                let _ = kill_process(p, Signal::KILL);
            }
        }
        if self.ended().is_none()
            && start_ticks(self.pid) == Some(self.start_ticks)
            && let Some(p) = group
        {
            let _ = kill_process(p, Signal::KILL);
        }
        for _ in 0..100 {
            if self.ended().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.release().await;
    }

    /// Removes what the engine leaves once it ended: its control group
    /// (killing what is still in it) and its containers.
    pub async fn release(&mut self) {
        if let Some((c, n)) = self.cgroup.take() {
            let _ = tokio::task::spawn_blocking(move || c.kill_and_remove(&n)).await;
        }
        remove_containers(self.pid).await;
    }
}

fn pid(p: u32) -> Option<Pid> {
    i32::try_from(p).ok().and_then(Pid::from_raw)
}

/// The fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    Some(
        stat.get(close + 2..)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// When a process started, in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.first().cloned())
        .is_some_and(|s| s == "Z" || s == "X")
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Every process below `root`, from one scan of `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| Some((p, parent_of(p)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
}

/// Containers the engine `pid` ran (it names them `insitu-cwl-<pid>-<n>`)
/// are removed, where podman is installed.
async fn remove_containers(pid: u32) {
    let podman = ["/usr/bin/podman", "/usr/local/bin/podman"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let Some(podman) = podman else { return };
    let listed = tokio::process::Command::new(&podman)
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("name=^insitu-cwl-{pid}-"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(20), listed).await else {
        return;
    };
    let prefix = format!("insitu-cwl-{pid}-");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return;
    }
    let removed = tokio::process::Command::new(&podman)
        .args(["rm", "--force", "--time=0"])
        .args(&names)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), removed).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_opens_and_a_stop_ends_the_whole_tree() {
        let d = tempfile::tempdir().unwrap();
        let (out, err) = (d.path().join("out"), d.path().join("err"));
        // A stand-in for the engine: a shell with a child that ignores
        // SIGTERM, in a group of its own.
        let mut e = EngineProcess::start(&Launch {
            program: Path::new("/bin/sh"),
            args: vec![
                "-c".into(),
                "echo started; (trap '' TERM; sleep 300) & sleep 300".into(),
            ],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            dir: d.path(),
            stdout: &out,
            stderr: &err,
            netns: None,
            cgroup: None,
        })
        .unwrap();
        let mut tree = Vec::new();
        for _ in 0..100 {
            tree = descendants(e.pid);
            if std::fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("started")
                && tree.len() >= 2
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tree.len() >= 2, "{tree:?}");
        assert_eq!(e.ended(), None);
        assert!(
            EngineProcess::adopt(e.pid, e.start_ticks, None).is_none(),
            "not the engine's program"
        );
        e.stop(Duration::from_millis(200)).await;
        assert!(e.ended().is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
        for p in tree {
            assert!(
                start_ticks(p).is_none() || is_zombie(p),
                "{p} outlived the stop"
            );
        }
    }
}
