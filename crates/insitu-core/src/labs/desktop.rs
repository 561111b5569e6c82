//! Desktop labs: X11 programs (TOPCAT, Aladin, DS9, fv, QFitsView) shown in
//! the browser, and the per-user SAMP hub that lets a user's tools talk.
//!
//! A desktop lab's sandbox runs [`SESSION_SCRIPT`] with bash: a virtual X
//! display with a VNC server (TigerVNC's `Xvnc`, which also does remote
//! resize and the clipboard) listening only on a unix socket in the
//! sandbox's private `/tmp`, a small window manager, the program, and then
//! the VNC-over-WebSocket bridge (`websockify`) on the lab's loopback port,
//! serving the noVNC client under the lab's base URL. The lab proxy relays
//! it like any web lab: the user's credential is the proxy's per-lab
//! cookie, and no URL carries one. The bridge demands the lab's own secret
//! (HTTP Basic, checked by [`AUTH_PLUGIN`], a websockify plugin that reads
//! it from the environment) on its files and its WebSocket alike, which
//! only the proxy presents; the VNC server listens on no port at all. The
//! bridge also serves
//! `insitu-windows.txt`, the program's windows and titles as the X server
//! reports them. The program keeps running while no browser is connected;
//! reconnecting shows the same display.
//!
//! [`SampHubs`] keeps one SAMP hub (astropy's, with [`SAMP_HUB_SCRIPT`]
//! recording clients and messages) per user with active labs, in a sandbox
//! made like the user's labs: its lockfile is `~/.samp` in the user's
//! workspace, so all of the user's labs find it and nobody else's does. A
//! hub runs in a control group of its own (`samp-<user id>`) with modest
//! limits (`labs.samp_hub`), never in the platform's own groups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use insitu_api::SampRecord;
use insitu_domain::{DatalabKind, DatalabSpec, LabState, UserId};
use insitu_launcher::{Cgroups, Limits, NetNs, Placement, SandboxProcess, SandboxSpec};

use super::Labs;
use crate::error::Error;

/// The desktop session, run by `bash -c` inside the lab's sandbox.
pub const SESSION_SCRIPT: &str = include_str!("desktop/session.sh");

/// websockify's authentication plugin for desktop labs: HTTP Basic with
/// the lab's secret, read from `INSITU_LAB_SECRET` (the stock plugin would
/// need it on the command line). The session script writes it to a file
/// of the sandbox's private `/tmp` and puts it on websockify's path.
pub const AUTH_PLUGIN: &str = include_str!("desktop/websockify_auth.py");

/// The variable that carries [`AUTH_PLUGIN`]'s source to the session.
const AUTH_PLUGIN_VARIABLE: &str = "INSITU_DESKTOP_AUTH_PLUGIN";

/// The SAMP hub, run by the virtualenv's `python3 -c`.
pub const SAMP_HUB_SCRIPT: &str = include_str!("desktop/samp_hub.py");

/// Screen size before the browser asks for its own (noVNC's remote resize).
pub const DEFAULT_GEOMETRY: &str = "1280x800";

/// The sandbox command of a desktop lab: the session script wrapping the
/// datalab's (filled-in) command, which holds the file to open, if any.
pub fn session_command(title: &str, port: u16, base_url: &str, program: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = vec![
        "bash".into(),
        "-c".into(),
        SESSION_SCRIPT.into(),
        "insitu-desktop".into(),
        port.to_string(),
        base_url.into(),
        DEFAULT_GEOMETRY.into(),
        title.into(),
        "--".into(),
    ];
    cmd.extend(program.iter().cloned());
    cmd
}

/// What a desktop session needs from the host besides the program.
const SESSION_NEEDS: [(&str, &str); 4] = [
    ("/usr/bin/Xvnc", "tigervnc-standalone-server"),
    ("/usr/bin/websockify", "websockify"),
    ("/usr/share/novnc/vnc.html", "novnc"),
    ("/usr/bin/xprop", "x11-utils"),
];

impl Labs {
    /// Refuses, in the request, a desktop launch this machine cannot start:
    /// the session's programs or the datalab's own are not installed.
    pub(super) fn check_desktop(&self, spec: &DatalabSpec) -> Result<(), Error> {
        // A container's image brings its own desktop session.
        if spec.kind != DatalabKind::Desktop || spec.launch.image.is_some() {
            return Ok(());
        }
        let mut missing: Vec<String> = SESSION_NEEDS
            .iter()
            .filter(|(path, _)| !Path::new(path).exists())
            .map(|(path, package)| format!("{path} (Debian package {package})"))
            .collect();
        if let Some(program) = spec.launch.command.first()
            && !program.contains('{')
            && find_program(program, &self.path_var()).is_none()
        {
            missing.push(program.clone());
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::DatalabNotLaunchable {
            datalab: spec.name.clone(),
            missing,
        })
    }

    /// The sandbox of a lab about to start: a desktop datalab's program
    /// goes inside the desktop session; every lab gets the user's SAMP hub,
    /// in the user's network namespace `netns` where labs have one.
    pub(super) async fn prepare_desktop(
        &self,
        sandbox: &mut SandboxSpec,
        spec: &DatalabSpec,
        user_id: &UserId,
        port: u16,
        base_url: &str,
        netns: Option<&NetNs>,
    ) {
        self.prepare_session(sandbox, spec, port, base_url);
        self.samp
            .ensure(&self.cfg.bwrap, sandbox, user_id, netns)
            .await;
    }

    /// The sandbox of a lab about to start, without the SAMP hub (which
    /// runs on this machine: a lab on a cluster's node has none).
    pub(super) fn prepare_session(
        &self,
        sandbox: &mut SandboxSpec,
        spec: &DatalabSpec,
        port: u16,
        base_url: &str,
    ) {
        if spec.kind == DatalabKind::Desktop {
            sandbox.command = session_command(&spec.title, port, base_url, &sandbox.command);
            sandbox
                .env
                .push((AUTH_PLUGIN_VARIABLE.to_owned(), AUTH_PLUGIN.to_owned()));
        }
        let limited = (self.cgroups().is_some() && spec.resources.memory_bytes > 0)
            .then_some(spec.resources.memory_bytes);
        let desktop = spec.kind == DatalabKind::Desktop;
        for (k, v) in lab_environment(limited, desktop) {
            if !sandbox.env.iter().any(|(e, _)| *e == k) {
                sandbox.env.push((k, v));
            }
        }
    }

    /// Stops the SAMP hubs of users who have no active lab left.
    pub(super) async fn retain_samp_hubs(&self) -> Result<(), insitu_store::StoreError> {
        if !self.samp.any() {
            return Ok(());
        }
        let mut users: Vec<UserId> = self
            .store
            .labs_in_states(&LabState::ACTIVE)
            .await?
            .into_iter()
            .map(|l| l.user_id)
            .collect();
        users.dedup();
        self.samp.retain(&users).await;
        Ok(())
    }

    /// What the user's SAMP hub recorded.
    pub fn samp_records(&self, user_id: &UserId) -> Vec<SampRecord> {
        self.samp.records(user_id)
    }
}

/// The share of a lab's memory a Java tool's heap may take.
const JAVA_HEAP_PERCENT: u64 = 70;

/// What every lab finds in its environment besides the datalab's own
/// (which wins): where the SAMP hub is, and for Java tools their home and
/// a heap sized from the lab's memory limit `memory`, where one is
/// enforced. The JVM sizes its heap from the machine's memory, not the
/// lab's limit: without this a large table ends in the kernel's OOM kill
/// instead of Java's own out-of-memory message. In a `desktop` lab the
/// heap is also set where a launcher script's own `-Xmx` cannot override
/// it (Debian's `aladin` says `-Xmx1024m`): `_JAVA_OPTIONS` comes after
/// the command line; in other labs a user's own `java -Xmx…` wins.
pub fn lab_environment(memory: Option<u64>, desktop: bool) -> Vec<(String, String)> {
    // SAMP clients find the hub through its lockfile in the workspace;
    // Java tools (TOPCAT, Aladin) take their home from the account
    // database, not from HOME, unless told.
    let home = insitu_launcher::HOME_PATH;
    let mut java = format!("-Duser.home={home}");
    let mut env = vec![(
        "SAMP_HUB".to_owned(),
        format!("std-lockurl:file://{home}/.samp"),
    )];
    if let Some(bytes) = memory {
        java.push_str(&format!(
            " -XX:MaxRAM={bytes} -XX:MaxRAMPercentage={JAVA_HEAP_PERCENT}"
        ));
        if desktop {
            let heap_mib = (bytes / 100 * JAVA_HEAP_PERCENT) >> 20;
            env.push(("_JAVA_OPTIONS".to_owned(), format!("-Xmx{heap_mib}m")));
        }
    }
    env.push(("JAVA_TOOL_OPTIONS".to_owned(), java));
    env
}

fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| PathBuf::from(program));
    }
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.exists())
}

const RECORD_PREFIX: &str = "samp-record ";

/// Per-user SAMP hubs, started with a user's first lab and stopped when the
/// user has none left active. A hub outlives a platform restart like labs
/// do: its pid is kept beside its log and it is adopted again.
pub struct SampHubs {
    dir: PathBuf,
    hubs: Mutex<HashMap<UserId, SandboxProcess>>,
    /// Held while a hub is checked and started, so two labs starting at
    /// once never start two hubs for one user.
    starting: tokio::sync::Mutex<()>,
    /// Where hubs' control groups go, when limits are enforced.
    cgroups: Option<Cgroups>,
    limits: Limits,
}

/// The control group of a user's hub.
pub fn hub_group(user_id: &UserId) -> String {
    format!("samp-{user_id}")
}

impl SampHubs {
    /// Hubs keep their logs and pid files under `dir/<user id>/`; each
    /// runs in a group of `cgroups` with `limits`.
    pub fn new(dir: PathBuf, cgroups: Option<Cgroups>, limits: Limits) -> SampHubs {
        SampHubs {
            dir,
            hubs: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            cgroups,
            limits,
        }
    }

    pub fn log_path(&self, user_id: &UserId) -> PathBuf {
        self.dir.join(user_id.as_str()).join("hub.log")
    }

    fn pid_path(&self, user_id: &UserId) -> PathBuf {
        self.dir.join(user_id.as_str()).join("hub.pid")
    }

    /// Makes sure the user has a running hub in the network `netns` (the
    /// user's namespace; `None` for the host's). `lab` is the sandbox of the
    /// lab being started: the hub gets the same workspace, network and
    /// user, none of its volumes or devices, and the hub's program. A hub
    /// left in another namespace (the user's labs all stopped and a new
    /// namespace was made) is replaced. Failures are logged, not returned:
    /// labs work without SAMP.
    pub async fn ensure(
        &self,
        bwrap: &Path,
        lab: &SandboxSpec,
        user_id: &UserId,
        netns: Option<&NetNs>,
    ) {
        let _starting = self.starting.lock().await;
        let log = self.log_path(user_id);
        let stale = {
            let Ok(mut hubs) = self.hubs.lock() else {
                return;
            };
            let mut current = match hubs.remove(user_id) {
                Some(p) => Some(p),
                None => self.adopt(user_id, &log),
            };
            let alive = current.as_mut().is_some_and(|p| {
                p.status() == insitu_launcher::ExitStatus::Running && in_network(p.pid, netns)
            });
            match current {
                Some(p) if alive => {
                    hubs.insert(user_id.clone(), p);
                    return;
                }
                other => other,
            }
        };
        if let Some(mut p) = stale {
            p.stop(Duration::from_secs(2)).await;
        }
        let spec = SandboxSpec {
            command: vec![
                "python3".into(),
                "-W".into(),
                "ignore::DeprecationWarning".into(),
                "-c".into(),
                SAMP_HUB_SCRIPT.into(),
            ],
            env: lab
                .env
                .iter()
                .filter(|(k, _)| k == "PATH")
                .cloned()
                .collect(),
            // Nothing of the lab's own: not its secret either.
            private_env: insitu_launcher::PrivateEnv::default(),
            volumes: Vec::new(),
            team_workspaces: Vec::new(),
            devices: Vec::new(),
            // The lab's socket stays the lab's: a hub outlives labs.
            api_socket_dir: None,
            ..lab.clone()
        };
        let group = hub_group(user_id);
        let placement = Placement {
            cgroup: self
                .cgroups
                .as_ref()
                .map(|c| (c, group.as_str(), self.limits)),
            netns,
        };
        match SandboxProcess::start_in(bwrap, &spec, &log, placement) {
            Ok(p) => {
                tracing::info!(user = %user_id, pid = p.pid, "SAMP hub started");
                let _ = std::fs::write(
                    self.pid_path(user_id),
                    format!("{} {}\n", p.pid, p.start_ticks),
                );
                if let Ok(mut hubs) = self.hubs.lock() {
                    hubs.insert(user_id.clone(), p);
                }
            }
            Err(e) => tracing::warn!(user = %user_id, error = %e, "cannot start the SAMP hub"),
        }
    }

    fn adopt(&self, user_id: &UserId, log: &Path) -> Option<SandboxProcess> {
        let text = std::fs::read_to_string(self.pid_path(user_id)).ok()?;
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        let group = hub_group(user_id);
        let cgroup = self.cgroups.as_ref().map(|c| (c, group.as_str()));
        SandboxProcess::adopt_in(pid, start, log, cgroup)
    }

    /// After a restart: takes the hubs of users in `keep` over again, and
    /// stops the others. The hubs are those this platform ran (one
    /// directory each beside their logs); a control group left of one that
    /// no longer runs is removed. Other platforms' hubs are left alone.
    pub async fn adopt_all(&self, keep: &[UserId]) {
        let users: Vec<UserId> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for user in users {
            match self.adopt(&user, &self.log_path(&user)) {
                Some(hub) if keep.contains(&user) => {
                    tracing::info!(user = %user, pid = hub.pid, "SAMP hub re-adopted after restart");
                    if let Ok(mut hubs) = self.hubs.lock() {
                        hubs.insert(user, hub);
                    }
                }
                Some(mut hub) => {
                    hub.stop(Duration::from_secs(3)).await;
                    let _ = std::fs::remove_file(self.pid_path(&user));
                    tracing::info!(user = %user, "SAMP hub stopped: no active lab left");
                }
                None => {
                    let _ = std::fs::remove_file(self.pid_path(&user));
                    if let Some(c) = &self.cgroups {
                        let (c, name) = (c.clone(), hub_group(&user));
                        if c.dirs(&name).iter().any(|d| d.exists()) {
                            let _ =
                                tokio::task::spawn_blocking(move || c.kill_and_remove(&name)).await;
                        }
                    }
                }
            }
        }
    }

    /// Whether any hub is known (so the caller can skip looking for users).
    pub fn any(&self) -> bool {
        self.hubs.lock().is_ok_and(|h| !h.is_empty())
    }

    /// Stops the hubs of users not in `keep`.
    pub async fn retain(&self, keep: &[UserId]) {
        let stale: Vec<(UserId, SandboxProcess)> = match self.hubs.lock() {
            Ok(mut hubs) => {
                let names: Vec<UserId> =
                    hubs.keys().filter(|u| !keep.contains(u)).cloned().collect();
                names
                    .into_iter()
                    .filter_map(|u| hubs.remove(&u).map(|p| (u, p)))
                    .collect()
            }
            Err(_) => return,
        };
        for (user, mut p) in stale {
            p.stop(Duration::from_secs(3)).await;
            let _ = std::fs::remove_file(self.pid_path(&user));
            tracing::info!(user = %user, "SAMP hub stopped: no active lab left");
        }
    }

    /// What the user's hub recorded, oldest first (the whole log, across
    /// the hubs the user had).
    /// The newest records of a user's hub: at most [`SAMP_RECORDS_MAX`],
    /// read from at most the last [`SAMP_LOG_READ_MAX`] bytes of its log
    /// (whose size the user's tools control, through what they send).
    pub fn records(&self, user_id: &UserId) -> Vec<SampRecord> {
        let tail = log_tail_bytes(&self.log_path(user_id), SAMP_LOG_READ_MAX).unwrap_or_default();
        let mut records = parse_records(&tail);
        let extra = records.len().saturating_sub(SAMP_RECORDS_MAX);
        records.drain(..extra);
        records
    }
}

/// Whether process `pid` is in the network namespace `netns` (the host's
/// when `None`).
fn in_network(pid: u32, netns: Option<&NetNs>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
    let wanted = match netns {
        Some(ns) => std::fs::metadata(ns.path()).map(|m| m.ino()),
        None => std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()),
    };
    matches!((theirs, wanted), (Ok(a), Ok(b)) if a == b)
}

/// Most bytes of a hub's log read for its records.
pub const SAMP_LOG_READ_MAX: u64 = 1 << 20;
/// Most records returned.
pub const SAMP_RECORDS_MAX: usize = 1000;

/// The last `max` bytes of a file, from the first whole line among them.
fn log_tail_bytes(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(match (start > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_owned(),
        (true, None) => String::new(),
        (false, _) => text.into_owned(),
    })
}

fn parse_records(log: &str) -> Vec<SampRecord> {
    log.lines()
        .filter_map(|l| l.strip_prefix(RECORD_PREFIX))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_wraps_the_program_and_its_arguments() {
        let cmd = session_command(
            "DS9",
            8123,
            "/labs/ab/",
            &[
                "ds9".into(),
                "-samp".into(),
                "/media/data/deep/x.fits".into(),
            ],
        );
        assert_eq!(cmd[0..2], ["bash", "-c"]);
        assert_eq!(
            cmd[3..],
            [
                "insitu-desktop",
                "8123",
                "/labs/ab/",
                DEFAULT_GEOMETRY,
                "DS9",
                "--",
                "ds9",
                "-samp",
                "/media/data/deep/x.fits"
            ]
        );
        assert!(cmd[2].contains("websockify"));
    }

    #[test]
    fn java_heaps_are_sized_from_the_labs_memory() {
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(e, _)| e == k).map(|(_, v)| v.clone())
        };
        let desktop = lab_environment(Some(1 << 30), true);
        assert_eq!(get(&desktop, "_JAVA_OPTIONS").as_deref(), Some("-Xmx716m"));
        assert_eq!(
            get(&desktop, "JAVA_TOOL_OPTIONS").as_deref(),
            Some("-Duser.home=/home/user -XX:MaxRAM=1073741824 -XX:MaxRAMPercentage=70")
        );
        // A notebook's own `java -Xmx…` keeps its word in a web lab.
        assert_eq!(
            get(&lab_environment(Some(1 << 30), false), "_JAVA_OPTIONS"),
            None
        );
        // Without an enforced limit the JVM sizes itself.
        let free = lab_environment(None, true);
        assert_eq!(get(&free, "_JAVA_OPTIONS"), None);
        assert_eq!(
            get(&free, "JAVA_TOOL_OPTIONS").as_deref(),
            Some("-Duser.home=/home/user")
        );
        assert_eq!(
            get(&free, "SAMP_HUB").as_deref(),
            Some("std-lockurl:file:///home/user/.samp")
        );
    }

    #[test]
    fn a_huge_hub_log_is_read_only_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let hubs = SampHubs::new(dir.path().to_path_buf(), None, Limits::default());
        let user: UserId = "0190a8c4-5f3e-7d2a-8b1c-123456789abc".parse().unwrap();
        let log = hubs.log_path(&user);
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        // A tool floods the hub: 8 MiB of records, the newest last.
        let mut text = String::new();
        let mut n = 0;
        while text.len() < 8 << 20 {
            text.push_str(&format!(
                "samp-record {{\"at\": {n}, \"event\": \"message\", \"mtype\": \"{}\"}}\n",
                "x".repeat(200)
            ));
            n += 1;
        }
        std::fs::write(&log, &text).unwrap();
        let records = hubs.records(&user);
        assert_eq!(records.len(), SAMP_RECORDS_MAX);
        assert_eq!(records.last().unwrap().at, f64::from(n - 1));
        // A log shorter than the limit is read whole.
        std::fs::write(&log, "samp-record {\"at\": 1, \"event\": \"metadata\"}\n").unwrap();
        assert_eq!(hubs.records(&user).len(), 1);
    }

    #[test]
    fn records_are_read_from_the_hub_log() {
        let log = "INFO: Hub started\n\
            samp-record {\"at\": 1.5, \"event\": \"metadata\", \"client\": \"cli#1\", \"name\": \"topcat\"}\n\
            samp-record {\"at\": 2.0, \"event\": \"message\", \"kind\": \"call\", \"sender\": \"cli#2\", \"recipient\": \"cli#1\", \"mtype\": \"table.load.votable\", \"params\": {\"url\": \"file:///t.vot\"}}\n\
            samp-record not json\n";
        let r = parse_records(log);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name.as_deref(), Some("topcat"));
        assert_eq!(r[1].mtype.as_deref(), Some("table.load.votable"));
        assert_eq!(r[1].params.as_ref().unwrap()["url"], "file:///t.vot");
    }
}
