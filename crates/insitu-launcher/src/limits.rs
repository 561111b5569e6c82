//! Resource limits through Linux control groups.
//!
//! Every sandbox gets a control group of its own below an `insitu` group:
//! a hard memory limit (no swap beyond it), a CPU quota (`cpus` cores' worth
//! of CPU time per 100 ms period) and a limit on the number of processes.
//! cgroup v2 is used where the unified hierarchy offers the controllers;
//! otherwise the v1 hierarchies of the memory, cpu and pids controllers,
//! each where it is mounted. What this host can enforce is found once, at
//! start-up ([`Cgroups::detect`]), and said in words
//! ([`Cgroups::describe`]) so that operators know.
//!
//! A sandbox's processes are placed in its group before the tool runs: the
//! sandbox starts blocked (bubblewrap's `--block-fd`), its processes are
//! moved, then it is released. The group also makes stopping exact: every
//! process in it is killed, whatever it did to leave its process group.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a sandbox may use; `None` leaves a resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// Cores' worth of CPU time (1.5 = one and a half cores).
    pub cpus: Option<f64>,
    pub max_pids: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// Where this host lets us create control groups.
#[derive(Debug, Clone, PartialEq)]
pub enum Cgroups {
    /// The unified hierarchy: one directory per sandbox below `base`.
    V2 {
        base: PathBuf,
        controllers: Vec<Controller>,
    },
    /// Separate hierarchies: one directory per sandbox below each base.
    V1 { bases: Vec<(Controller, PathBuf)> },
    /// Limits cannot be enforced here; the reason says why.
    Unavailable(String),
}

/// CFS period used for CPU quotas, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

impl Cgroups {
    /// Finds the controllers this process may use and creates the `group`
    /// directory (e.g. `insitu`) below each hierarchy.
    pub fn detect(group: &str) -> Cgroups {
        let mounts = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(m) => m,
            Err(e) => return Cgroups::Unavailable(format!("cannot read mountinfo: {e}")),
        };
        let mut unified = None;
        let mut v1: Vec<(Controller, PathBuf)> = Vec::new();
        for line in mounts.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(point) = left.split_whitespace().nth(4) else {
                continue;
            };
            let mut right = right.split_whitespace();
            let fstype = right.next().unwrap_or_default();
            let options = right.nth(1).unwrap_or_default();
            match fstype {
                "cgroup2" => unified = Some(PathBuf::from(point)),
                "cgroup" => {
                    for c in Controller::ALL {
                        if options.split(',').any(|o| o == c.name())
                            && !v1.iter().any(|(have, _)| *have == c)
                        {
                            v1.push((c, PathBuf::from(point)));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(root) = unified
            && let Some(v2) = Cgroups::try_v2(&root, group)
        {
            return v2;
        }
        let bases: Vec<(Controller, PathBuf)> = v1
            .into_iter()
            .filter_map(|(c, point)| {
                let base = point.join(group);
                std::fs::create_dir_all(&base).ok()?;
                // Writable only if we may create groups in it.
                let probe = base.join(format!(".probe-{}", std::process::id()));
                std::fs::create_dir(&probe).ok()?;
                std::fs::remove_dir(&probe).ok()?;
                Some((c, base))
            })
            .collect();
        if bases.is_empty() {
            Cgroups::Unavailable(
                "no writable cgroup hierarchy with the memory, cpu or pids controller".into(),
            )
        } else {
            Cgroups::V1 { bases }
        }
    }

    fn try_v2(root: &Path, group: &str) -> Option<Cgroups> {
        let offered = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
        let wanted: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| offered.split_whitespace().any(|o| o == c.name()))
            .collect();
        if wanted.is_empty() {
            return None;
        }
        let base = root.join(group);
        std::fs::create_dir_all(&base).ok()?;
        let mut controllers = Vec::new();
        for c in wanted {
            let enable = format!("+{}", c.name());
            // Both the root and our group must hand the controller down.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), &enable);
            if std::fs::write(base.join("cgroup.subtree_control"), &enable).is_ok() {
                controllers.push(c);
            }
        }
        (!controllers.is_empty()).then_some(Cgroups::V2 { base, controllers })
    }

    /// What is enforced, in words, for the log and the docs.
    pub fn describe(&self) -> String {
        let names = |cs: &mut dyn Iterator<Item = Controller>| {
            cs.map(Controller::name).collect::<Vec<_>>().join(", ")
        };
        match self {
            Cgroups::V2 { base, controllers } => format!(
                "cgroup v2 at {}: {}",
                base.display(),
                names(&mut controllers.iter().copied())
            ),
            Cgroups::V1 { bases } => {
                format!("cgroup v1: {}", names(&mut bases.iter().map(|(c, _)| *c)))
            }
            Cgroups::Unavailable(reason) => format!("not enforced: {reason}"),
        }
    }

    pub fn enforces(&self, c: Controller) -> bool {
        match self {
            Cgroups::V2 { controllers, .. } => controllers.contains(&c),
            Cgroups::V1 { bases } => bases.iter().any(|(have, _)| *have == c),
            Cgroups::Unavailable(_) => false,
        }
    }

    /// The directories of the sandbox `name`'s group (one per hierarchy).
    pub fn dirs(&self, name: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V2 { base, .. } => vec![base.join(name)],
            Cgroups::V1 { bases } => bases.iter().map(|(_, b)| b.join(name)).collect(),
            Cgroups::Unavailable(_) => Vec::new(),
        }
    }

    /// The names of the groups below ours (sandboxes, live or left over).
    pub fn group_names(&self) -> Vec<String> {
        let base = match self {
            Cgroups::V2 { base, .. } => base,
            Cgroups::V1 { bases } => match bases.first() {
                Some((_, b)) => b,
                None => return Vec::new(),
            },
            Cgroups::Unavailable(_) => return Vec::new(),
        };
        std::fs::read_dir(base)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn dir_of(&self, name: &str, c: Controller) -> Option<PathBuf> {
        match self {
            Cgroups::V2 { base, controllers } => controllers.contains(&c).then(|| base.join(name)),
            Cgroups::V1 { bases } => bases
                .iter()
                .find(|(have, _)| *have == c)
                .map(|(_, b)| b.join(name)),
            Cgroups::Unavailable(_) => None,
        }
    }

    /// What a sandbox in group `name` sees of it: each of its directories
    /// (host path) and where it shows inside (`/sys/fs/cgroup` in v2, or
    /// `/sys/fs/cgroup/<hierarchy>` in v1), so that tools and runtimes
    /// that size themselves from their group's limits find them, and
    /// nothing of other groups.
    pub fn sandbox_view(&self, name: &str) -> Vec<(PathBuf, PathBuf)> {
        let root = Path::new("/sys/fs/cgroup");
        match self {
            Cgroups::V2 { base, .. } => vec![(base.join(name), root.to_owned())],
            Cgroups::V1 { bases } => {
                let mut view: Vec<(PathBuf, PathBuf)> = Vec::new();
                for (c, base) in bases {
                    let inside = base
                        .parent()
                        .and_then(Path::file_name)
                        .map_or_else(|| root.join(c.name()), |m| root.join(m));
                    if !view.iter().any(|(_, i)| *i == inside) {
                        view.push((base.join(name), inside));
                    }
                }
                view
            }
            Cgroups::Unavailable(_) => Vec::new(),
        }
    }

    /// How the kernel log names the group `name` of the memory controller:
    /// its path below the hierarchy's root (`/insitu/<name>`).
    pub fn memory_group_path(&self, name: &str) -> Option<String> {
        let d = self.dir_of(name, Controller::Memory)?;
        let base = d.parent()?.file_name()?.to_str()?;
        Some(format!("/{base}/{name}"))
    }

    /// Creates the group `name` and writes its limits.
    pub fn create(&self, name: &str, limits: &Limits) -> std::io::Result<()> {
        for d in self.dirs(name) {
            std::fs::create_dir_all(&d)?;
        }
        let v2 = matches!(self, Cgroups::V2 { .. });
        // "No limit" is "max" in v2 files and "-1" in v1 files; pids.max
        // says "max" in both.
        let value = |v: Option<u64>, unlimited: &str| {
            v.map_or_else(|| unlimited.to_owned(), |v| v.to_string())
        };
        let unlimited = if v2 { "max" } else { "-1" };
        if let Some(d) = self.dir_of(name, Controller::Memory) {
            let limit = value(limits.memory_bytes, unlimited);
            if v2 {
                std::fs::write(d.join("memory.max"), &limit)?;
                let swap = if limits.memory_bytes.is_some() {
                    "0"
                } else {
                    "max"
                };
                let _ = std::fs::write(d.join("memory.swap.max"), swap);
            } else {
                std::fs::write(d.join("memory.limit_in_bytes"), &limit)?;
                // Memory plus swap, where the kernel accounts swap: the same.
                let _ = std::fs::write(d.join("memory.memsw.limit_in_bytes"), &limit);
            }
        }
        if let Some(d) = self.dir_of(name, Controller::Cpu) {
            let quota = limits
                .cpus
                .map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000));
            let quota = value(quota, unlimited);
            if v2 {
                std::fs::write(d.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}"))?;
            } else {
                std::fs::write(d.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
                std::fs::write(d.join("cpu.cfs_quota_us"), quota)?;
            }
        }
        if let Some(d) = self.dir_of(name, Controller::Pids) {
            std::fs::write(d.join("pids.max"), value(limits.max_pids, "max"))?;
        }
        Ok(())
    }

    /// Moves a process (all its threads) into the group `name`.
    pub fn join(&self, name: &str, pid: u32) -> std::io::Result<()> {
        for d in self.dirs(name) {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the group `name` (empty when it does not exist).
    pub fn pids(&self, name: &str) -> Vec<u32> {
        let Some(d) = self.dirs(name).into_iter().next() else {
            return Vec::new();
        };
        std::fs::read_to_string(d.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Bytes of memory the group uses now.
    pub fn memory_usage(&self, name: &str) -> Option<u64> {
        let d = self.dir_of(name, Controller::Memory)?;
        let file = if matches!(self, Cgroups::V2 { .. }) {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        std::fs::read_to_string(d.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// CPU seconds the group has used: the group's own count where the
    /// hierarchy keeps one (cgroup v2), else the sum over its live
    /// processes and the children they waited for, from `/proc`; `None`
    /// when the group holds no process it can read.
    pub fn cpu_seconds(&self, name: &str) -> Option<f64> {
        if let Cgroups::V2 { base, .. } = self {
            let stat = std::fs::read_to_string(base.join(name).join("cpu.stat")).ok()?;
            let usec: u64 = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))?
                .trim()
                .parse()
                .ok()?;
            return Some(Duration::from_micros(usec).as_secs_f64());
        }
        let mut ticks: Option<u64> = None;
        for pid in self.pids(name) {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The fields after the command's closing parenthesis start at
            // the state (field 3): utime, stime, cutime and cstime are
            // fields 14 to 17.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let used: u64 = rest
                .split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum();
            ticks = Some(ticks.unwrap_or(0) + used);
        }
        // /proc counts in USER_HZ, 100 per second on Linux.
        ticks.map(|t| Duration::from_millis(t * 10).as_secs_f64())
    }

    /// The group's memory limit in bytes; `None` when it has none (or no
    /// memory controller).
    pub fn memory_limit(&self, name: &str) -> Option<u64> {
        let d = self.dir_of(name, Controller::Memory)?;
        let file = if matches!(self, Cgroups::V2 { .. }) {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let limit: u64 = std::fs::read_to_string(d.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // cgroup v1 says "no limit" with a number near the largest page
        // count; v2 says "max", which does not parse.
        (limit < 1 << 62).then_some(limit)
    }

    /// How many times the kernel killed a process of the group for lack of
    /// memory.
    pub fn oom_kills(&self, name: &str) -> u64 {
        let Some(d) = self.dir_of(name, Controller::Memory) else {
            return 0;
        };
        let file = if matches!(self, Cgroups::V2 { .. }) {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(d.join(file))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Kills every process left in the group `name` (and in the groups
    /// below it, which a container runtime makes) and removes them all;
    /// `false` when that could not be done within about half a second.
    pub fn kill_and_remove(&self, name: &str) -> bool {
        for _ in 0..50 {
            let left = self.pids_below(name);
            if left.is_empty() && self.remove(name).is_ok() {
                return true;
            }
            for p in left {
                if let Some(pid) = i32::try_from(p)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    /// The processes in the group `name` and in every group below it.
    fn pids_below(&self, name: &str) -> Vec<u32> {
        let Some(d) = self.dirs(name).into_iter().next() else {
            return Vec::new();
        };
        let mut pids = Vec::new();
        for dir in subtree(&d) {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        pids
    }

    /// The group `name` as podman's `--cgroup-parent` names it with the
    /// cgroupfs manager: its path from the root of each hierarchy
    /// (`/insitu/<name>`).
    pub fn parent_path(&self, name: &str) -> Option<String> {
        let base = match self {
            Cgroups::V2 { base, .. } => base,
            Cgroups::V1 { bases } => &bases.first()?.1,
            Cgroups::Unavailable(_) => return None,
        };
        let group = base.file_name()?.to_str()?;
        Some(format!("/{group}/{name}"))
    }

    /// Removes what a container runtime left of the group `name` in the
    /// hierarchies this platform does not limit with (cgroup v1's devices,
    /// cpuset, blkio, …): empty directories only.
    pub fn remove_elsewhere(&self, name: &str) {
        let Some(relative) = self.parent_path(name) else {
            return;
        };
        let ours = self.dirs(name);
        let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        for line in mounts.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fstype = right.split_whitespace().next().unwrap_or_default();
            let Some(point) = left.split_whitespace().nth(4) else {
                continue;
            };
            if !matches!(fstype, "cgroup" | "cgroup2") {
                continue;
            }
            let dir = Path::new(point).join(relative.trim_start_matches('/'));
            if ours.contains(&dir) {
                continue;
            }
            // A group whose last process is still exiting stays busy for a
            // moment.
            for _ in 0..50 {
                if !dir.is_dir() {
                    break;
                }
                for d in subtree(&dir).into_iter().rev() {
                    let _ = std::fs::remove_dir(&d);
                }
                if dir.is_dir() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }

    /// Removes the group `name` and the groups below it; fails while
    /// processes remain in them.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        let mut result = Ok(());
        for d in self.dirs(name) {
            // The deepest first: a group with groups below cannot go.
            for dir in subtree(&d).into_iter().rev() {
                match std::fs::remove_dir(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => result = Err(e),
                    _ => {}
                }
            }
        }
        result
    }
}

/// A group's directory and every group directory below it, parents before
/// their children.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < found.len() {
        if let Ok(rd) = std::fs::read_dir(&found[i]) {
            let children: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            found.extend(children);
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_enforces_nothing() {
        let c = Cgroups::Unavailable("test".into());
        assert!(!c.enforces(Controller::Memory));
        assert!(c.dirs("x").is_empty());
        assert!(c.create("x", &Limits::default()).is_ok());
        assert_eq!(c.describe(), "not enforced: test");
    }

    #[test]
    fn v1_places_one_group_per_hierarchy() {
        let c = Cgroups::V1 {
            bases: vec![
                (Controller::Memory, "/cg/memory/insitu".into()),
                (Controller::Pids, "/cg/pids/insitu".into()),
            ],
        };
        assert_eq!(
            c.dirs("lab1"),
            vec![
                PathBuf::from("/cg/memory/insitu/lab1"),
                PathBuf::from("/cg/pids/insitu/lab1")
            ]
        );
        assert!(c.enforces(Controller::Pids) && !c.enforces(Controller::Cpu));
        assert_eq!(c.describe(), "cgroup v1: memory, pids");
        assert_eq!(
            c.sandbox_view("lab1"),
            vec![
                (
                    PathBuf::from("/cg/memory/insitu/lab1"),
                    PathBuf::from("/sys/fs/cgroup/memory")
                ),
                (
                    PathBuf::from("/cg/pids/insitu/lab1"),
                    PathBuf::from("/sys/fs/cgroup/pids")
                ),
            ]
        );
        assert_eq!(c.memory_group_path("lab1").as_deref(), Some("/insitu/lab1"));
        assert_eq!(c.parent_path("lab1").as_deref(), Some("/insitu/lab1"));
        assert_eq!(Cgroups::Unavailable("x".into()).parent_path("lab1"), None);
    }
}
