//! Starting, finding again and stopping sandboxes.
//!
//! A sandbox is a `bwrap` process run by a supervisor of its own: a small
//! POSIX shell script ([`SUPERVISOR`]) that starts bubblewrap in the
//! foreground, waits for it and writes its exit status and time to the
//! status file beside the log ([`status_path`]). The supervisor runs in a
//! process group of its own and nothing ties it to the platform, which is
//! its parent only while the platform runs: a restart, a crash or a
//! `kill -9` of the platform leaves sandboxes running (their
//! `--die-with-parent`, when set, names the supervisor). The platform
//! finds a sandbox again by pid and start time, and learns from the status
//! file how one ended while it was away.
//!
//! bubblewrap is exec'd inside the sandbox's control group: the
//! supervisor's subshell waits for the launcher's go, sent once the
//! launcher has moved it into the group, so nothing of the sandbox runs
//! outside its limits and its cgroup namespace is rooted at its group;
//! bubblewrap's own `--block-fd` gate opens with the same go. With
//! `--unshare-pid`, bwrap's child is the init of the sandbox's pid
//! namespace: when it dies the kernel ends every process inside, so
//! stopping that one process stops the whole tree; the control group,
//! killed and removed, catches anything else.

use std::fs::OpenOptions;
use std::io::{BufRead, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::process::{Pid, Signal, kill_process};

use crate::limits::{Cgroups, Limits};
use crate::memory::{MemoryKill, logged_kills};
use crate::netns::NetNs;
use crate::record::{self, Journal, Record};
use crate::sandbox::{SandboxSpec, StepBinds, bwrap_args_in};

pub use crate::record::status_path;

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
    #[error("the sandbox's supervisor ended before the sandbox started; last output: {0}")]
    Supervisor(String),
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
    /// Ended; the exit status (128 + n for signal n) when known: known
    /// whenever the supervisor recorded it, after a restart too.
    Exited(Option<i32>),
}

/// How a sandbox ended, in full.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxEnd {
    /// The tool's exit status (128 + n for signal n), when known.
    pub code: Option<i32>,
    /// When it ended, where the supervisor recorded it (whole seconds).
    pub at: Option<SystemTime>,
    /// Whether the tool itself was killed for lack of memory (not merely
    /// one of its children earlier on: those are [`MemoryKill`]s).
    pub killed_for_memory: bool,
}

/// The supervisor of one sandbox, run by `/bin/sh -c`. Its stdin is the
/// gate, its stdout the log, its stderr the status file (where the shell's
/// own remarks, such as "Killed", are lines the reader skips); `$1` is the
/// seccomp program's file (or empty), the rest is bubblewrap's command
/// line. The subshell that becomes bubblewrap waits for the launcher's
/// `go` line (sent once it is in its control group) and takes stderr to
/// the log. Run in the foreground, bubblewrap keeps default signal
/// dispositions (a background job of a shell would ignore SIGINT, and so
/// would every tool below it).
pub const SUPERVISOR: &str = r#"filter=$1; shift
(
  exec 2>&1
  read -r go && [ "$go" = go ] || exit 125
  if [ -n "$filter" ]; then exec 4<"$filter" || exit 125; fi
  exec "$@"
)
code=$?
at=$(date +%s 2>/dev/null)
printf '{"exited":{"code":%d,"at":%s}}\n' "$code" "${at:-null}" >&2
"#;

/// The file descriptor bubblewrap reads the seccomp program from.
const SECCOMP_FD: &str = "4";

/// The sandbox's init and tool processes: (pid, start ticks) each.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Inside {
    init: (u32, u64),
    tool: (u32, u64),
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
    status_path: PathBuf,
    /// The supervisor, when this platform process started it (to reap it).
    supervisor: Option<std::process::Child>,
    /// The supervisor's pid and start ticks.
    supervisor_id: Option<(u32, u64)>,
    /// Its control group, when it has one.
    cgroup: Option<(Cgroups, String)>,
    inside: Option<Inside>,
    /// Every memory kill seen, oldest first, and how many were handed out.
    kills: Vec<MemoryKill>,
    reported: usize,
    /// The last kernel log record that named one of the kills.
    last_seq: Option<u64>,
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

    /// Starts `spec` under bubblewrap, supervised (see the module), in a
    /// control group and a network namespace. With a control group,
    /// bubblewrap starts inside it, so the tool never runs outside its
    /// limits, and the sandbox sees that group alone. Every sandbox gets
    /// the system-call filter of [`crate::seccomp`]. Blocks for as long as
    /// the supervisor takes to fork (milliseconds).
    pub fn start_in(
        bwrap: &Path,
        spec: &SandboxSpec,
        log_path: &Path,
        placement: Placement<'_>,
    ) -> Result<SandboxProcess, LaunchError> {
        if !bwrap.exists() {
            return Err(LaunchError::NoBwrap(bwrap.display().to_string()));
        }
        let (files, log, status) = Files::open(log_path)?;
        let mut view = Vec::new();
        if let Some((cgroups, name, limits)) = placement.cgroup {
            cgroups.create(name, &limits).map_err(LaunchError::Limits)?;
            view = cgroups.sandbox_view(name);
        }
        let cgroup = placement
            .cgroup
            .map(|(cgroups, name, _)| (cgroups.clone(), name.to_owned()));
        let (gate, go) = std::io::pipe().map_err(LaunchError::Spawn)?;
        let mut cmd = supervisor_command(bwrap, spec, &files, (log, status), &view);
        cmd.stdin(gate);
        let spawned = match placement.netns {
            Some(ns) => ns.run(move || cmd.spawn()),
            None => Ok(cmd.spawn()),
        };
        let supervisor = match spawned {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                release(cgroup.as_ref());
                return Err(LaunchError::Spawn(e));
            }
            Err(e) => {
                release(cgroup.as_ref());
                return Err(e.into());
            }
        };
        admit(supervisor, go, cgroup, files, &spec.private_env.args_data())
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
        if !alive(pid, start) || comm(pid).as_deref() != Some("bwrap") {
            return None;
        }
        let status_path = status_path(log_path);
        let journal = record::read(&status_path);
        let mut p = SandboxProcess {
            pid,
            start_ticks: start,
            log_path: log_path.to_owned(),
            status_path,
            supervisor: None,
            supervisor_id: None,
            cgroup: cgroup.map(|(c, n)| (c.clone(), n.to_owned())),
            inside: None,
            kills: Vec::new(),
            reported: 0,
            last_seq: None,
        };
        if journal.is_of(pid, start) {
            p.resume(&journal);
        }
        Some(p)
    }

    /// Finds again the sandbox whose status file sits beside `log_path`,
    /// from what the launcher wrote there as it started it: for a sandbox
    /// started just before the platform ended, whose pid its caller had not
    /// recorded yet. `None` when none was recorded or it has ended.
    pub fn adopt_recorded(
        log_path: &Path,
        cgroup: Option<(&Cgroups, &str)>,
    ) -> Option<SandboxProcess> {
        let journal = record::read(&status_path(log_path));
        let Some(Record::Started {
            pid, start_ticks, ..
        }) = journal.started
        else {
            return None;
        };
        SandboxProcess::adopt_in(pid, start_ticks, log_path, cgroup)
    }

    /// Takes up what the status file says of this sandbox.
    fn resume(&mut self, journal: &Journal) {
        if let Some(Record::Started {
            supervisor,
            supervisor_ticks,
            ..
        }) = journal.started
        {
            self.supervisor_id = Some((supervisor, supervisor_ticks));
        }
        if let Some(Record::Tool {
            init,
            init_ticks,
            pid,
            start_ticks,
        }) = journal.tool
        {
            self.inside = Some(Inside {
                init: (init, init_ticks),
                tool: (pid, start_ticks),
            });
        }
        for k in &journal.kills {
            if let Record::MemoryKill {
                pid,
                command,
                at,
                tool,
                seq,
            } = k
            {
                self.kills.push(MemoryKill {
                    pid: *pid,
                    command: command.clone(),
                    at: record::from_unix_seconds(*at).unwrap_or(SystemTime::UNIX_EPOCH),
                    tool: *tool,
                });
                self.last_seq = seq.or(self.last_seq);
            }
        }
        // Kills recorded before the restart were handed out then.
        self.reported = self.kills.len();
    }

    /// Memory kills of the sandbox's processes since the last call (since
    /// the start, or since a restart for those the platform had not seen),
    /// oldest first. Needs a control group with the memory controller.
    pub fn memory_kills(&mut self) -> Vec<MemoryKill> {
        self.look_inside();
        self.count_kills();
        let new = self.kills[self.reported..].to_vec();
        self.reported = self.kills.len();
        new
    }

    /// How the sandbox ended; `None` while it runs.
    pub fn end(&mut self) -> Option<SandboxEnd> {
        let ExitStatus::Exited(code) = self.status() else {
            return None;
        };
        self.count_kills();
        let at = match record::read(&self.status_path).exited {
            Some(Record::Exited { at, .. }) => at.and_then(record::from_unix_seconds),
            _ => None,
        };
        Some(SandboxEnd {
            code,
            at,
            killed_for_memory: killed_for_memory(&self.kills, code, self.inside.is_some()),
        })
    }

    /// Records the kills the control group counted beyond those known,
    /// named from the kernel log where it can.
    fn count_kills(&mut self) {
        let Some((c, name)) = &self.cgroup else {
            return;
        };
        let counted = c.oom_kills(name);
        let known = u64::try_from(self.kills.len()).unwrap_or(u64::MAX);
        if counted <= known {
            return;
        }
        let logged = c
            .memory_group_path(name)
            .map(|g| logged_kills(&g, self.last_seq))
            .unwrap_or_default();
        let tool = self.inside.map(|i| i.tool.0);
        let now = SystemTime::now();
        for i in 0..(counted - known) {
            let named = usize::try_from(i).ok().and_then(|i| logged.get(i));
            let kill = MemoryKill {
                pid: named.map(|k| k.pid),
                command: named.map(|k| k.command.clone()),
                at: named.map_or(now, |k| k.at),
                tool: named.is_some_and(|k| Some(k.pid) == tool),
            };
            if let Some(k) = named {
                self.last_seq = Some(k.seq);
            }
            let line = Record::MemoryKill {
                pid: kill.pid,
                command: kill.command.clone(),
                at: record::unix_seconds(kill.at),
                tool: kill.tool,
                seq: named.map(|k| k.seq),
            };
            if let Err(e) = record::append(&self.status_path, &line) {
                tracing::warn!(error = %e, "cannot record a sandbox's memory kill");
            }
            self.kills.push(kill);
        }
    }

    /// Notes the sandbox's init and tool processes once they exist.
    fn look_inside(&mut self) {
        if self.inside.is_some() || !self.bwrap_alive() {
            return;
        }
        let Some(init) = children(self.pid).into_iter().next() else {
            return;
        };
        // The init's first child is the tool; orphans adopted later are
        // younger.
        let Some(tool) = children(init)
            .into_iter()
            .filter_map(|p| Some((p, start_ticks(p)?)))
            .min_by_key(|(_, t)| *t)
        else {
            return;
        };
        let Some(init_ticks) = start_ticks(init) else {
            return;
        };
        let inside = Inside {
            init: (init, init_ticks),
            tool,
        };
        let line = Record::Tool {
            init,
            init_ticks,
            pid: tool.0,
            start_ticks: tool.1,
        };
        if let Err(e) = record::append(&self.status_path, &line) {
            tracing::warn!(error = %e, "cannot record a sandbox's processes");
        }
        self.inside = Some(inside);
    }

    /// Bytes of memory the sandbox uses now, where its group accounts it.
    pub fn memory_usage(&self) -> Option<u64> {
        let (c, name) = self.cgroup.as_ref()?;
        c.memory_usage(name)
    }

    /// The memory limit of the sandbox's control group, where one is set.
    pub fn memory_limit(&self) -> Option<u64> {
        let (c, name) = self.cgroup.as_ref()?;
        c.memory_limit(name)
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

    fn bwrap_alive(&self) -> bool {
        alive(self.pid, self.start_ticks)
    }

    /// Whether the supervisor still runs (it then records the end soon).
    fn supervisor_alive(&mut self) -> bool {
        if let Some(child) = &mut self.supervisor {
            return matches!(child.try_wait(), Ok(None));
        }
        self.supervisor_id.is_some_and(|(p, t)| alive(p, t))
    }

    /// Whether the sandbox still runs.
    pub fn status(&mut self) -> ExitStatus {
        if self.bwrap_alive() {
            self.look_inside();
            return ExitStatus::Running;
        }
        let journal = record::read(&self.status_path);
        match journal.exited {
            Some(Record::Exited { code, .. }) if journal.is_of(self.pid, self.start_ticks) => {
                self.reap();
                ExitStatus::Exited(Some(code))
            }
            _ if self.supervisor_alive() => ExitStatus::Running,
            _ => ExitStatus::Exited(None),
        }
    }

    /// Waits for the supervisor when it is ours and has ended.
    fn reap(&mut self) {
        if let Some(child) = &mut self.supervisor
            && matches!(child.try_wait(), Ok(Some(_)))
        {
            self.supervisor = None;
        }
    }

    /// Stops the whole process tree: SIGTERM to the tools, SIGKILL after
    /// `grace`; then whatever is left of the sandbox (its init, its control
    /// group) is killed and the group removed.
    pub async fn stop(&mut self, grace: Duration) {
        if self.status() != ExitStatus::Running {
            // Never signal a pid that may already belong to someone else.
            self.kill_leftovers();
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
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.status() == ExitStatus::Running {
            for p in children(self.pid) {
                signal(p, Signal::KILL);
            }
            if self.bwrap_alive() {
                signal(self.pid, Signal::KILL);
            }
            for _ in 0..100 {
                if self.status() != ExitStatus::Running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.kill_leftovers();
        self.release_cgroup();
        self.reap();
    }

    /// Kills the sandbox's init when it outlived bubblewrap (a sandbox
    /// started without `die_with_parent` keeps it, and any orphans, after
    /// the tool ended).
    fn kill_leftovers(&self) {
        if let Some(Inside { init: (p, t), .. }) = self.inside
            && alive(p, t)
        {
            signal(p, Signal::KILL);
        }
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        log_tail(&self.log_path, n)
    }
}

impl Drop for SandboxProcess {
    /// A supervisor this process started is waited for when it ends, so it
    /// does not linger as a zombie.
    fn drop(&mut self) {
        self.reap();
        if let Some(mut child) = self.supervisor.take() {
            let _ = std::thread::Builder::new()
                .name("sandbox-reaper".into())
                .spawn(move || child.wait());
        }
    }
}

/// How a sandbox recorded as `pid` started at `start` ended while nothing
/// watched it (the platform was down): `None` unless its supervisor
/// recorded it. Kills of the tool count only where they were recorded.
pub fn recorded_end(pid: u32, start: u64, log_path: &Path) -> Option<SandboxEnd> {
    let journal = record::read(&status_path(log_path));
    if !journal.is_of(pid, start) {
        return None;
    }
    let Some(Record::Exited { code, at }) = journal.exited else {
        return None;
    };
    let kills: Vec<MemoryKill> = journal
        .kills
        .iter()
        .filter_map(|k| match k {
            Record::MemoryKill { pid, tool, .. } => Some(MemoryKill {
                pid: *pid,
                command: None,
                at: SystemTime::UNIX_EPOCH,
                tool: *tool,
            }),
            _ => None,
        })
        .collect();
    Some(SandboxEnd {
        code: Some(code),
        at: at.and_then(record::from_unix_seconds),
        killed_for_memory: killed_for_memory(&kills, Some(code), journal.tool.is_some()),
    })
}

/// Kills the sandbox recorded beside `log_path`, bubblewrap and init,
/// where they are still the recorded processes (its supervisor then
/// records the end and goes): how a test harness ends every sandbox a
/// platform it ran had started. The control group, if any, is left to the
/// caller.
pub fn kill_recorded(log_path: &Path) {
    let journal = record::read(&status_path(log_path));
    let Some(Record::Started {
        pid, start_ticks, ..
    }) = journal.started
    else {
        return;
    };
    let mut victims = vec![(pid, start_ticks)];
    if let Some(Record::Tool {
        init, init_ticks, ..
    }) = journal.tool
    {
        victims.push((init, init_ticks));
    }
    for (p, t) in victims {
        if alive(p, t) {
            signal(p, Signal::KILL);
        }
    }
}

/// Whether the tool itself died of a memory kill: a kill named it; or,
/// where the kill could not be matched to it (the kernel log did not name
/// the process, or the tool was never seen), it ended by SIGKILL after one.
fn killed_for_memory(kills: &[MemoryKill], code: Option<i32>, tool_known: bool) -> bool {
    kills.iter().any(|k| k.tool)
        || (code == Some(128 + 9) && kills.iter().any(|k| k.pid.is_none() || !tool_known))
}

/// Writes the system-call filter beside the log, readable by the sandbox's
/// user (bubblewrap may run as that user); `None` on an architecture
/// without one.
pub(crate) fn write_filter(log_path: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = crate::seccomp::program() else {
        return Ok(None);
    };
    let path = record::sibling(log_path, "seccomp");
    std::fs::write(&path, program)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(Some(path))
}

/// The files of a sandbox beside its log.
struct Files {
    log_path: PathBuf,
    status_path: PathBuf,
    /// The seccomp program, where this architecture has one.
    filter: Option<PathBuf>,
}

impl Files {
    /// Makes them ready, and opens the log and the (emptied) status file
    /// for the supervisor to append to.
    fn open(log_path: &Path) -> Result<(Files, std::fs::File, std::fs::File), LaunchError> {
        let log_error = |source| LaunchError::Log {
            path: log_path.display().to_string(),
            source,
        };
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(log_error)?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(log_error)?;
        let status_path = status_path(log_path);
        std::fs::File::create(&status_path).map_err(log_error)?;
        let status = OpenOptions::new()
            .append(true)
            .open(&status_path)
            .map_err(log_error)?;
        let filter = write_filter(log_path).map_err(log_error)?;
        let files = Files {
            log_path: log_path.to_owned(),
            status_path,
            filter,
        };
        Ok((files, log, status))
    }
}

/// The supervisor's command line (see [`SUPERVISOR`]), its stdin left to
/// the caller.
fn supervisor_command(
    bwrap: &Path,
    spec: &SandboxSpec,
    files: &Files,
    (log, status): (std::fs::File, std::fs::File),
    cgroup_view: &[(PathBuf, PathBuf)],
) -> std::process::Command {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(SUPERVISOR)
        .arg("insitu-sandbox")
        .arg(files.filter.as_deref().unwrap_or(Path::new("")))
        .arg(bwrap)
        .args(["--block-fd", "0"]);
    if files.filter.is_some() {
        cmd.args(["--seccomp", SECCOMP_FD]);
    }
    cmd.args(bwrap_args_in(spec, &StepBinds::default(), cgroup_view))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdout(log)
        .stderr(status)
        .process_group(0);
    if let Some((uid, gid)) = spec.run_as {
        // Dropping from root also drops supplementary groups.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Takes a just-spawned supervisor to a running sandbox: finds the subshell
/// that will become bubblewrap, moves it into the control group, records
/// it, and lets it go.
fn admit(
    mut supervisor: std::process::Child,
    mut go: std::io::PipeWriter,
    cgroup: Option<(Cgroups, String)>,
    files: Files,
    private: &[u8],
) -> Result<SandboxProcess, LaunchError> {
    let supervisor_pid = supervisor.id();
    let supervisor_id = (supervisor_pid, start_ticks(supervisor_pid).unwrap_or(0));
    let abandon = |mut supervisor: std::process::Child, pid: Option<u32>| {
        if let Some(p) = pid {
            signal(p, Signal::KILL);
        }
        let _ = supervisor.kill();
        let _ = supervisor.wait();
        release(cgroup.as_ref());
    };
    let Some(pid) = wait_for_child(&mut supervisor) else {
        abandon(supervisor, None);
        return Err(LaunchError::Supervisor(
            log_tail(&files.log_path, 3).join(" | "),
        ));
    };
    let start_ticks = start_ticks(pid).unwrap_or(0);
    if let Some((c, name)) = &cgroup
        && let Err(e) = c.join(name, pid)
    {
        abandon(supervisor, Some(pid));
        return Err(LaunchError::Limits(e));
    }
    let started = Record::Started {
        pid,
        start_ticks,
        supervisor: supervisor_id.0,
        supervisor_ticks: supervisor_id.1,
        at: record::unix_seconds(SystemTime::now()),
    };
    if let Err(source) = record::append(&files.status_path, &started) {
        abandon(supervisor, Some(pid));
        return Err(LaunchError::Log {
            path: files.status_path.display().to_string(),
            source,
        });
    }
    // The subshell's line, then what bubblewrap reads: the private
    // variables (`--args 0`, while it parses its arguments, up to the end
    // of the pipe; its `--block-fd` then finds that end), or the byte its
    // `--block-fd` waits for. An error means the supervisor already ended;
    // its status will say so. Dropping the writer closes the pipe.
    let mut gate = b"go\n".to_vec();
    if private.is_empty() {
        gate.push(b'1');
    } else {
        gate.extend_from_slice(private);
    }
    let _ = go.write_all(&gate);
    drop(go);
    Ok(SandboxProcess {
        pid,
        start_ticks,
        log_path: files.log_path,
        status_path: files.status_path,
        supervisor: Some(supervisor),
        supervisor_id: Some(supervisor_id),
        cgroup,
        inside: None,
        kills: Vec::new(),
        reported: 0,
        last_seq: None,
    })
}

/// Kills and removes a control group made for a sandbox that did not start.
fn release(cgroup: Option<&(Cgroups, String)>) {
    if let Some((c, name)) = cgroup {
        let _ = c.kill_and_remove(name);
    }
}

/// The first child of a just-started supervisor; `None` when the
/// supervisor ended first or none appeared within ten seconds.
fn wait_for_child(supervisor: &mut std::process::Child) -> Option<u32> {
    let pid = supervisor.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(c) = children(pid).into_iter().next() {
            return Some(c);
        }
        if !matches!(supervisor.try_wait(), Ok(None)) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
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

/// Whether the process `pid` started at `ticks` still runs.
fn alive(pid: u32, ticks: u64) -> bool {
    start_ticks(pid) == Some(ticks) && !is_zombie(pid)
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
