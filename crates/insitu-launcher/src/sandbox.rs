//! The bubblewrap command line for a sandbox.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the user's workspace appears inside every sandbox.
pub const HOME_PATH: &str = "/home/user";

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeMount {
    /// Directory on the host.
    pub source: PathBuf,
    /// Where the sandbox sees it, read-only.
    pub target: PathBuf,
}

/// A team workspace in a sandbox's home.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamWorkspace {
    /// The team's name: the directory it has under
    /// `team_workspaces/` in the home.
    pub name: String,
    /// Directory on the host.
    pub source: PathBuf,
}

/// Everything a sandbox needs; paths are host paths unless named otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxSpec {
    /// Program and arguments, placeholders already filled in.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables that must show on no command line (a lab's secret): set
    /// after `env`, read by bubblewrap from its stdin (`--args 0`), so the
    /// caller must write [`PrivateEnv::args_data`] there and close it, as
    /// [`crate::SandboxProcess`] does.
    pub private_env: PrivateEnv,
    /// The user's workspace, bound read-write at [`HOME_PATH`], the home
    /// laid out as [`crate::home`] says: `my_workspace/`, and a sandbox's
    /// own read-only `data/` (a link to each volume) and
    /// `team_workspaces/` (each of `team_workspaces`). Empty: no home.
    pub workspace: PathBuf,
    /// Data volumes, bound read-only.
    pub volumes: Vec<VolumeMount>,
    /// Team workspaces, bound read-write at
    /// `team_workspaces/<name>` in the home (with a workspace only); a
    /// name that is not a plain file name is left out.
    pub team_workspaces: Vec<TeamWorkspace>,
    /// Host paths the sandbox must not see (the platform's data directory,
    /// its configuration, its database): directories or files, links
    /// resolved. Each is covered, wherever the sandbox would show it (at
    /// its own place, inside an exposed path, a volume or the workspace),
    /// by an empty read-only directory or an empty file. Paths that do not
    /// exist when the sandbox starts are not covered.
    pub hidden: Vec<PathBuf>,
    /// Device nodes to bind (GPUs).
    pub devices: Vec<PathBuf>,
    /// Host paths shown read-only at the same place even where the sandbox
    /// otherwise has its own (`/tmp`, `/home`, …): tool installations.
    pub expose: Vec<PathBuf>,
    /// Whether the sandbox shares the host's network (web labs listen on a
    /// loopback port the proxy reaches).
    pub share_network: bool,
    /// The unprivileged user and group the sandbox runs as; `None` keeps the
    /// caller's (tests only: tools must never run as root).
    pub run_as: Option<(u32, u32)>,
    /// Capabilities the sandboxed process keeps when bubblewrap runs as
    /// root (for pipeline steps, [`TOOL_CAPS`]). Every other capability is
    /// dropped, always: root in a sandbox could otherwise remount its
    /// read-only binds writable.
    pub keep_caps: Vec<String>,
    /// Whether the sandbox is killed when the process that started
    /// bubblewrap ends (`--die-with-parent`). A pipeline engine sets it for
    /// its steps. Labs set it too: [`crate::SandboxProcess`] starts
    /// bubblewrap from a supervisor of its own that outlives the platform,
    /// so the sandbox ends with its supervisor, never with the platform.
    pub die_with_parent: bool,
    /// A host directory shown read-only at [`API_SOCKET_DIR`]: where a
    /// lab finds the platform's API socket (the directory, not the socket,
    /// so a socket made again after a restart shows there too). `None`:
    /// nothing there.
    pub api_socket_dir: Option<PathBuf>,
}

/// Where a sandbox shows [`SandboxSpec::api_socket_dir`].
pub const API_SOCKET_DIR: &str = "/run/insitu";

/// Environment variables of a sandbox that must not be seen by other
/// processes of the host: they travel through a pipe to bubblewrap, never
/// in its arguments (which every process may read in `/proc`), and reach
/// only the sandboxed process's environment. `Debug` shows their names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrivateEnv(Vec<(String, String)>);

impl PrivateEnv {
    /// Adds a variable; a later one of the same name wins. A name or value
    /// holding a NUL byte, or a name holding `=`, is left out.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if name.is_empty() || name.contains(['\0', '=']) || value.contains('\0') {
            return;
        }
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The variables' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Names and values, for a launcher that hands them over in its own
    /// environment.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// What bubblewrap reads with `--args 0`: NUL-separated `--setenv`
    /// arguments.
    pub fn args_data(&self) -> Vec<u8> {
        let mut data = Vec::new();
        for (name, value) in &self.0 {
            for part in ["--setenv", name, value] {
                data.extend_from_slice(part.as_bytes());
                data.push(0);
            }
        }
        data
    }
}

impl std::fmt::Debug for PrivateEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.names().map(|n| format!("{n}=<redacted>")))
            .finish()
    }
}

/// What a tool running as root in a sandbox may still do: what container
/// runtimes leave root by default (change owners and modes of its own
/// files, switch users, …), less what reaches beyond the sandbox (device
/// nodes, file capabilities). Never `CAP_SYS_ADMIN`: no mounts.
pub const TOOL_CAPS: [&str; 10] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_AUDIT_WRITE",
];

/// A host path shown at the same place inside the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub path: PathBuf,
    /// Read-write when true, read-only otherwise.
    pub writable: bool,
}

/// What a pipeline step adds to a [`SandboxSpec`]: the job's own
/// directories and inputs, bound last so they win over what the spec hides
/// or replaces (a job directory under the host's `/tmp`), and where the
/// command starts. A spec with an empty `workspace` gets no home bind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepBinds {
    /// Bound in order, after the workspace, volumes and devices.
    pub binds: Vec<Bind>,
    /// Working directory of the command; [`HOME_PATH`] when `None`.
    pub workdir: Option<PathBuf>,
}

/// Top-level host directories never bound into a sandbox.
const SKIP_TOP: [&str; 8] = [
    "proc",
    "dev",
    "sys",
    "tmp",
    "run",
    "home",
    "root",
    "lost+found",
];

/// Whether every sandbox shows the host's `p` at the same place (read-only):
/// it is under one of the host's top-level directories that are bound,
/// not under those a sandbox replaces (`/tmp`, `/home`, `/root`, `/run`,
/// `/proc`, `/dev`, `/var/tmp`, …). Paths a spec hides are not considered.
pub fn shown_from_host(p: &Path) -> bool {
    use std::path::Component;
    let mut c = p.components();
    if c.next() != Some(Component::RootDir) || p.starts_with("/var/tmp") {
        return false;
    }
    match c.next() {
        Some(Component::Normal(top)) => top == "sys" || !SKIP_TOP.iter().any(|s| top == *s),
        _ => false,
    }
}

fn host_root_entries() -> Vec<std::fs::DirEntry> {
    let mut v: Vec<_> = std::fs::read_dir("/")
        .map(|rd| rd.flatten().collect())
        .unwrap_or_default();
    v.sort_by_key(std::fs::DirEntry::file_name);
    v
}

/// The arguments after `bwrap`.
pub fn bwrap_args(spec: &SandboxSpec) -> Vec<OsString> {
    bwrap_args_with(spec, &StepBinds::default())
}

/// The arguments after `bwrap` for a spec plus a step's own binds and
/// working directory (see [`StepBinds`]).
pub fn bwrap_args_with(spec: &SandboxSpec, step: &StepBinds) -> Vec<OsString> {
    bwrap_args_in(spec, step, &[])
}

/// Where the host's control group file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The arguments after `bwrap`, with `cgroup_view`: the sandbox's own
/// control group directories (host path, path inside), shown read-only in
/// place of the host's whole tree.
pub(crate) fn bwrap_args_in(
    spec: &SandboxSpec,
    step: &StepBinds,
    cgroup_view: &[(PathBuf, PathBuf)],
) -> Vec<OsString> {
    let has_workspace = !spec.workspace.as_os_str().is_empty();
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| {
        for p in parts {
            a.push(p.as_ref().to_owned());
        }
    };
    // The root is a tmpfs holding read-only binds of the host's top-level
    // directories, so mount points for volumes can be made anywhere.
    push(&[&"--tmpfs", &"/"]);
    let mount_tops = mount_tops(spec);
    let cgroup_mounts = cgroup_mounts();
    for entry in host_root_entries() {
        let name = entry.file_name();
        let path = Path::new("/").join(&name);
        if SKIP_TOP.iter().any(|s| name == *s) {
            continue;
        }
        if let Ok(target) = std::fs::read_link(&path) {
            push(&[&"--symlink", &target, &path]);
        } else if mount_tops.contains(&path) {
            // Volumes are mounted below it: an empty directory instead of the host's.
            push(&[&"--dir", &path]);
        } else if path.is_dir() {
            push(&[&"--ro-bind", &path, &path]);
        }
    }
    push(&[&"--ro-bind-try", &"/sys", &"/sys"]);
    // No host control group tree: it names every lab on the host and their
    // use. A sandbox with a group of its own sees that group alone.
    for m in &cgroup_mounts {
        push(&[&"--tmpfs", m]);
    }
    for (host, inside) in cgroup_view {
        push(&[&"--ro-bind", host, inside]);
    }
    if Path::new(CGROUP_ROOT).is_dir() {
        push(&[&"--remount-ro", &CGROUP_ROOT]);
    }
    push(&[&"--dev", &"/dev"]);
    push(&[&"--proc", &"/proc"]);
    push(&[&"--tmpfs", &"/tmp"]);
    if Path::new("/var/tmp").is_dir() {
        // A directory of the read-only /var bind would show the host's.
        push(&[&"--tmpfs", &"/var/tmp"]);
    }
    push(&[&"--tmpfs", &"/run"]);
    // Other users' homes and root's home stay out of sight.
    push(&[&"--dir", &"/home"]);
    push(&[&"--dir", &"/root"]);
    for e in &spec.expose {
        push(&[&"--ro-bind-try", e, e]);
    }
    let (early, late) = hidden_views(spec, &mount_tops, &cgroup_mounts);
    for arg in cover_args(&early) {
        push(&[&arg]);
    }
    if has_workspace {
        push(&[&"--bind", &spec.workspace, &HOME_PATH]);
    }
    for v in &spec.volumes {
        push(&[&"--ro-bind", &v.source, &v.target]);
    }
    if has_workspace {
        for arg in home_args(spec) {
            push(&[&arg]);
        }
    }
    for arg in cover_args(&late) {
        push(&[&arg]);
    }
    if let Some(dir) = &spec.api_socket_dir {
        // After the covers: the directory lies in the hidden data directory.
        push(&[&"--ro-bind", dir, &API_SOCKET_DIR]);
    }
    for d in &spec.devices {
        push(&[&"--dev-bind", d, d]);
    }
    // The directories above a step's binds that the sandbox makes itself
    // (in its own /tmp, in a hidden path's cover): made first, passable
    // (not listable) by every user, so that a tool running as another
    // user than bubblewrap reaches its binds through them.
    for dir in passable_parents(spec, step, &early, &late) {
        push(&[&"--perms", &"0711", &"--dir", &dir]);
    }
    for b in &step.binds {
        let how = if b.writable { "--bind" } else { "--ro-bind" };
        push(&[&how, &b.path, &b.path]);
    }
    // Covers of hidden directories are read-only from here on: a step's
    // binds below one were made in it first.
    for h in early.iter().chain(&late).filter(|h| h.dir) {
        push(&[&"--remount-ro", &h.at]);
    }
    push(&[
        &"--unshare-pid",
        &"--unshare-ipc",
        &"--unshare-uts",
        &"--unshare-cgroup-try",
    ]);
    if !spec.share_network {
        push(&[&"--unshare-net"]);
    }
    push(&[&"--hostname", &"insitu-lab"]);
    push(&[&"--cap-drop", &"ALL"]);
    for c in &spec.keep_caps {
        push(&[&"--cap-add", c]);
    }
    if spec.die_with_parent {
        push(&[&"--die-with-parent"]);
    }
    push(&[&"--new-session"]);
    push(&[&"--clearenv"]);
    let path = "/usr/local/bin:/usr/bin:/bin";
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path.into()),
        ("HOME".into(), HOME_PATH.into()),
        ("USER".into(), "user".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ];
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    for (k, v) in &env {
        push(&[&"--setenv", k, v]);
    }
    if !spec.private_env.is_empty() {
        // The private variables, from the caller's pipe on bubblewrap's
        // stdin: after the others, so they win.
        push(&[&"--args", &"0"]);
    }
    match &step.workdir {
        Some(w) => push(&[&"--chdir", w]),
        None => push(&[&"--chdir", &HOME_PATH]),
    }
    push(&[&"--"]);
    for c in &spec.command {
        push(&[c]);
    }
    a
}

/// The home's own directories (see [`crate::home`]): `data/`, a read-only
/// tmpfs of links to the volumes' mount paths, and `team_workspaces/`, a
/// read-only tmpfs holding each team workspace's read-write bind.
fn home_args(spec: &SandboxSpec) -> Vec<OsString> {
    let home = Path::new(HOME_PATH);
    let data = home.join(crate::home::DATA);
    let teams = home.join(crate::home::TEAM_WORKSPACES);
    let mut a: Vec<OsString> = vec!["--tmpfs".into(), data.clone().into()];
    let mut linked: Vec<&str> = Vec::new();
    for v in &spec.volumes {
        if let Some(name) = crate::home::data_link_name(&v.target)
            && !linked.contains(&name)
        {
            linked.push(name);
            a.extend([
                "--symlink".into(),
                v.target.clone().into(),
                data.join(name).into(),
            ]);
        }
    }
    a.extend(["--remount-ro".into(), data.into()]);
    a.extend(["--tmpfs".into(), teams.clone().into()]);
    for t in team_workspaces(spec) {
        a.extend([
            "--bind".into(),
            t.source.clone().into(),
            teams.join(&t.name).into(),
        ]);
    }
    a.extend(["--remount-ro".into(), teams.into()]);
    a
}

/// The spec's team workspaces whose names can be directories.
fn team_workspaces(spec: &SandboxSpec) -> impl Iterator<Item = &TeamWorkspace> {
    spec.team_workspaces
        .iter()
        .filter(|t| crate::home::is_plain_name(&t.name))
}

/// Top-level directories that volumes (or the home) are mounted below:
/// the sandbox gets an empty one instead of the host's.
fn mount_tops(spec: &SandboxSpec) -> Vec<PathBuf> {
    spec.volumes
        .iter()
        .map(|v| v.target.as_path())
        .chain(std::iter::once(Path::new(HOME_PATH)))
        .filter_map(|t| t.components().nth(1).map(|c| Path::new("/").join(c)))
        .collect()
}

/// The host's control group mounts a sandbox would show: `/sys/fs/cgroup`
/// and any cgroup file system mounted elsewhere under a bound directory.
fn cgroup_mounts() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    if Path::new(CGROUP_ROOT).is_dir() {
        found.push(PathBuf::from(CGROUP_ROOT));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split_whitespace().next().unwrap_or_default();
        let Some(point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let point = PathBuf::from(point);
        if (fstype == "cgroup" || fstype == "cgroup2")
            && shown_from_host(&point)
            && !found.iter().any(|f| point.starts_with(f))
        {
            found.push(point);
        }
    }
    found
}

/// Where a hidden host path would show inside a sandbox, and what covers it.
#[derive(Debug, Clone, PartialEq)]
struct Hidden {
    at: PathBuf,
    dir: bool,
}

/// The places to cover for the spec's hidden paths: those shown from the
/// host's own directories and exposed paths (covered before the workspace
/// and volumes are bound), and those inside the workspace or a volume
/// (covered after them). A path is resolved first (links, `..`), so a
/// link to a hidden file leads to the cover; paths inside another hidden
/// directory need no cover of their own.
fn hidden_views(
    spec: &SandboxSpec,
    mount_tops: &[PathBuf],
    cgroup_mounts: &[PathBuf],
) -> (Vec<Hidden>, Vec<Hidden>) {
    let real = |p: &Path| p.canonicalize().ok();
    // Host directory → where the sandbox shows it.
    let early_map: Vec<(PathBuf, PathBuf)> = spec
        .expose
        .iter()
        .filter_map(|e| Some((real(e)?, e.clone())))
        .collect();
    let mut late_map: Vec<(PathBuf, PathBuf)> = spec
        .volumes
        .iter()
        .filter_map(|v| Some((real(&v.source)?, v.target.clone())))
        .collect();
    if !spec.workspace.as_os_str().is_empty() {
        if let Some(ws) = real(&spec.workspace) {
            late_map.push((ws, PathBuf::from(HOME_PATH)));
        }
        let teams = Path::new(HOME_PATH).join(crate::home::TEAM_WORKSPACES);
        for t in team_workspaces(spec) {
            if let Some(source) = real(&t.source) {
                late_map.push((source, teams.join(&t.name)));
            }
        }
    }
    let (mut early, mut late) = (Vec::new(), Vec::new());
    for h in spec.hidden.iter().filter(|h| h.is_absolute()) {
        let Some(p) = real(h) else { continue };
        if p.parent().is_none() {
            tracing::warn!(path = %h.display(), "the root cannot be hidden from a sandbox");
            continue;
        }
        let dir = p.is_dir();
        let top = p.components().nth(1).map(|c| Path::new("/").join(c));
        let under_cgroups = cgroup_mounts.iter().any(|m| p.starts_with(m));
        if shown_from_host(&p) && !top.is_some_and(|t| mount_tops.contains(&t)) && !under_cgroups {
            early.push(Hidden { at: p.clone(), dir });
        }
        for (map, out) in [(&early_map, &mut early), (&late_map, &mut late)] {
            for (source, target) in map {
                if let Ok(rest) = p.strip_prefix(source) {
                    out.push(Hidden {
                        at: target.join(rest),
                        dir,
                    });
                }
            }
        }
    }
    (covers(early), covers(late))
}

/// bubblewrap's arguments that cover `views`: an empty directory over a
/// directory (made read-only once the step's binds are in place), an
/// empty file over anything else.
fn cover_args(views: &[Hidden]) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    for h in views {
        if h.dir {
            a.extend(["--tmpfs".into(), h.at.clone().into()]);
        } else {
            a.extend(["--ro-bind".into(), "/dev/null".into(), h.at.clone().into()]);
        }
    }
    a
}

/// The directories a sandbox makes above a step's binds, parents first:
/// those below the sandbox's own file systems (`/tmp`, `/run`, …, the
/// covers of hidden directories), not the roots of these, and not inside
/// anything bound from the host (another bind, an exposed path, a volume,
/// the workspace).
fn passable_parents(
    spec: &SandboxSpec,
    step: &StepBinds,
    early: &[Hidden],
    late: &[Hidden],
) -> Vec<PathBuf> {
    let covers: Vec<&Path> = early
        .iter()
        .chain(late)
        .filter(|h| h.dir)
        .map(|h| h.at.as_path())
        .collect();
    let from_host = |a: &Path| {
        step.binds.iter().any(|b| a.starts_with(&b.path))
            || spec.expose.iter().any(|e| a.starts_with(e))
            || spec.volumes.iter().any(|v| a.starts_with(&v.target))
            || (!spec.workspace.as_os_str().is_empty() && a.starts_with(HOME_PATH))
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for b in &step.binds {
        let mut above: Vec<&Path> = b.path.ancestors().skip(1).collect();
        above.reverse();
        for a in above {
            let top_level = a.components().count() <= 2;
            let made = !shown_from_host(a) || covers.iter().any(|c| a.starts_with(c));
            if top_level || !made || covers.contains(&a) || from_host(a) {
                continue;
            }
            if !dirs.iter().any(|d| d == a) {
                dirs.push(a.to_path_buf());
            }
        }
    }
    dirs
}

/// The covers to mount, parents first, leaving out duplicates and paths
/// inside a hidden directory.
fn covers(mut views: Vec<Hidden>) -> Vec<Hidden> {
    views.sort_by_key(|h| h.at.components().count());
    let mut kept: Vec<Hidden> = Vec::new();
    for h in views {
        if !kept
            .iter()
            .any(|k| h.at.starts_with(&k.at) && (k.dir || k.at == h.at))
        {
            kept.push(h);
        }
    }
    kept
}
/// The address a tool listens on by default: loopback (a lab on a
/// cluster's node gets [`LISTEN_ON_NODE`] in its `{listen}` instead).
pub const LISTEN_LOCAL: &str = "127.0.0.1";
/// Every address of a cluster's node, where the proxy reaches the tool.
pub const LISTEN_ON_NODE: &str = "0.0.0.0";

/// Fills `{port}`, `{base_url}`, `{workspace}`, `{user}` and `{listen}`
/// (loopback) in a template.
pub fn fill(template: &str, port: u16, base_url: &str, user: &str) -> String {
    template
        .replace("{listen}", LISTEN_LOCAL)
        .replace("{port}", &port.to_string())
        .replace("{base_url}", base_url)
        .replace("{workspace}", HOME_PATH)
        .replace("{user}", user)
}

/// Whether `p` is inside `root` once both are made absolute and normal.
pub fn is_within(root: &Path, p: &Path) -> bool {
    match (root.canonicalize(), p.canonicalize()) {
        (Ok(r), Ok(q)) => q.starts_with(r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_shown_in_every_sandbox() {
        for shown in ["/usr/bin/env", "/etc", "/work/data/x.fits", "/sys/fs"] {
            assert!(shown_from_host(Path::new(shown)), "{shown}");
        }
        for replaced in [
            "/tmp/x",
            "/home/ann",
            "/root/.cargo",
            "/run/x",
            "/proc/1",
            "/var/tmp/y",
            "/",
            "rel/x",
        ] {
            assert!(!shown_from_host(Path::new(replaced)), "{replaced}");
        }
    }

    #[test]
    fn the_api_socket_directory_shows_read_only_at_its_place_over_the_covers() {
        let spec = SandboxSpec {
            command: vec!["tool".into()],
            workspace: "/srv/ws/alice".into(),
            hidden: vec!["/etc".into()],
            ..SandboxSpec::default()
        };
        let strings = |spec: &SandboxSpec| -> Vec<String> {
            bwrap_args(spec)
                .into_iter()
                .map(|s| s.into_string().unwrap())
                .collect()
        };
        assert!(!strings(&spec).iter().any(|a| a.starts_with(API_SOCKET_DIR)));
        let args = strings(&SandboxSpec {
            api_socket_dir: Some("/etc/insitu-data/labs/l1/api".into()),
            ..spec
        });
        let at = |w: &[&str]| args.windows(w.len()).position(|x| x == w).unwrap();
        let bind = at(&["--ro-bind", "/etc/insitu-data/labs/l1/api", API_SOCKET_DIR]);
        assert!(bind > at(&["--tmpfs", "/run"]), "{args:?}");
        // Bound from the host, where the cover does not reach.
        assert!(bind > at(&["--tmpfs", "/etc"]), "{args:?}");
    }

    #[test]
    fn volumes_are_read_only_and_workspace_writable() {
        let spec = SandboxSpec {
            command: vec!["tool".into(), "--port=1".into()],
            workspace: "/srv/ws/alice".into(),
            volumes: vec![VolumeMount {
                source: "/srv/archive/gaia".into(),
                target: "/media/data/gaia".into(),
            }],
            ..SandboxSpec::default()
        };
        let args: Vec<String> = bwrap_args(&spec)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("--tmpfs / "));
        assert!(joined.contains("--ro-bind /usr /usr"));
        assert!(joined.contains("--bind /srv/ws/alice /home/user"));
        assert!(joined.contains("--ro-bind /srv/archive/gaia /media/data/gaia"));
        assert!(joined.contains("--unshare-net"));
        assert!(joined.contains("--cap-drop ALL"), "{joined}");
        assert!(!joined.contains("--cap-add"), "{joined}");
        let exposed = SandboxSpec {
            expose: vec!["/tmp/tools".into()],
            hidden: vec!["/etc".into()],
            ..spec
        };
        let args: Vec<String> = bwrap_args(&exposed)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let tmp = args
            .windows(2)
            .position(|w| w == ["--tmpfs", "/tmp"])
            .unwrap();
        let tools = args
            .windows(3)
            .position(|w| w == ["--ro-bind-try", "/tmp/tools", "/tmp/tools"])
            .unwrap();
        let hidden = args
            .windows(2)
            .position(|w| w == ["--tmpfs", "/etc"])
            .unwrap();
        assert!(
            tmp < tools && tools < hidden,
            "exposed paths come after /tmp and before what is hidden"
        );
        assert!(joined.ends_with("-- tool --port=1"));
    }

    #[test]
    fn the_home_links_volumes_and_binds_team_workspaces_read_only_around() {
        let spec = SandboxSpec {
            command: vec!["tool".into()],
            workspace: "/srv/ws/alice".into(),
            volumes: vec![VolumeMount {
                source: "/srv/archive/gaia".into(),
                target: "/media/data/gaia".into(),
            }],
            team_workspaces: vec![
                TeamWorkspace {
                    name: "astro".into(),
                    source: "/srv/teams/astro".into(),
                },
                TeamWorkspace {
                    name: "../../etc".into(),
                    source: "/srv/teams/evil".into(),
                },
            ],
            ..SandboxSpec::default()
        };
        let args: Vec<String> = bwrap_args(&spec)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let at = |w: &[&str]| {
            args.windows(w.len())
                .position(|x| x == w)
                .unwrap_or_else(|| panic!("{w:?} in {args:?}"))
        };
        let home = at(&["--bind", "/srv/ws/alice", "/home/user"]);
        let volume = at(&["--ro-bind", "/srv/archive/gaia", "/media/data/gaia"]);
        let data = at(&["--tmpfs", "/home/user/data"]);
        let link = at(&["--symlink", "/media/data/gaia", "/home/user/data/gaia"]);
        let data_ro = at(&["--remount-ro", "/home/user/data"]);
        let teams = at(&["--tmpfs", "/home/user/team_workspaces"]);
        let team = at(&[
            "--bind",
            "/srv/teams/astro",
            "/home/user/team_workspaces/astro",
        ]);
        let teams_ro = at(&["--remount-ro", "/home/user/team_workspaces"]);
        assert!(home < volume && volume < data && data < link && link < data_ro);
        assert!(data_ro < teams && teams < team && team < teams_ro);
        assert!(
            !args.iter().any(|a| a.contains("evil")),
            "a team name that is no plain name is left out: {args:?}"
        );
        let no_home = SandboxSpec {
            workspace: PathBuf::new(),
            ..spec
        };
        assert!(
            !bwrap_args(&no_home)
                .iter()
                .any(|a| a.to_string_lossy().contains("team_workspaces")),
            "no workspace, no home"
        );
    }

    #[test]
    fn step_binds_come_last_and_set_the_working_directory() {
        let spec = SandboxSpec {
            command: vec!["echo".into()],
            ..SandboxSpec::default()
        };
        let step = StepBinds {
            binds: vec![
                Bind {
                    path: "/tmp/job1/stg".into(),
                    writable: false,
                },
                Bind {
                    path: "/tmp/job1/out".into(),
                    writable: true,
                },
            ],
            workdir: Some("/tmp/job1/out".into()),
        };
        let args: Vec<String> = bwrap_args_with(&spec, &step)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(
            !args
                .windows(3)
                .any(|w| w[0] == "--bind" && w[2] == HOME_PATH),
            "no workspace, no home bind: {joined}"
        );
        let tmp = args
            .windows(2)
            .position(|w| w == ["--tmpfs", "/tmp"])
            .unwrap();
        let ro = args
            .windows(3)
            .position(|w| w == ["--ro-bind", "/tmp/job1/stg", "/tmp/job1/stg"])
            .unwrap();
        let rw = args
            .windows(3)
            .position(|w| w == ["--bind", "/tmp/job1/out", "/tmp/job1/out"])
            .unwrap();
        assert!(tmp < ro && ro < rw);
        assert!(joined.contains("--chdir /tmp/job1/out -- echo"));
        assert_eq!(
            bwrap_args(&spec),
            bwrap_args_with(&spec, &StepBinds::default())
        );
    }

    #[test]
    fn a_steps_binds_below_a_hidden_directory_get_passable_parents() {
        let d = tempfile_dir();
        let hidden = d.join("data");
        std::fs::create_dir_all(hidden.join("runs/r1/work")).unwrap();
        let spec = SandboxSpec {
            command: vec!["true".into()],
            hidden: vec![hidden.clone()],
            ..SandboxSpec::default()
        };
        let job = hidden.join("runs/r1/work/job0");
        let input = PathBuf::from("/tmp/in/deep/x.fits");
        let step = StepBinds {
            binds: vec![
                Bind {
                    path: input.clone(),
                    writable: false,
                },
                Bind {
                    path: job.clone(),
                    writable: true,
                },
            ],
            workdir: Some(job.clone()),
        };
        let args: Vec<String> = bwrap_args_with(&spec, &step)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let at = |w: &[&str]| {
            args.windows(w.len())
                .position(|x| x == w)
                .unwrap_or_else(|| panic!("{w:?} in {args:?}"))
        };
        let h = hidden.display().to_string();
        let cover = at(&["--tmpfs", &h]);
        let made: Vec<String> = ["runs", "runs/r1", "runs/r1/work"]
            .iter()
            .map(|p| hidden.join(p).display().to_string())
            .chain(["/tmp/in".into(), "/tmp/in/deep".into()])
            .collect();
        for dir in &made {
            let i = at(&["--perms", "0711", "--dir", dir]);
            assert!(cover < i && i < at(&["--bind", &job.display().to_string()]));
        }
        // Neither the cover itself, nor /tmp, nor a bind, is made again.
        for not in [h.as_str(), "/tmp", input.to_str().unwrap()] {
            assert!(
                !args.windows(2).any(|w| w[0] == "--dir" && w[1] == not),
                "{not}"
            );
        }
        // The cover turns read-only after the binds.
        let ro = at(&["--remount-ro", &h]);
        assert!(ro > at(&["--bind", &job.display().to_string()]));
    }

    /// A fresh directory under the workspace's target directory (a place
    /// every sandbox shows from the host).
    fn tempfile_dir() -> PathBuf {
        let d =
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp")).join(format!(
                "hide-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    #[test]
    fn private_variables_are_read_from_stdin_and_never_shown() {
        let mut private = PrivateEnv::default();
        private.set("LAB_SECRET", "s3cret-value");
        private.set("BAD=NAME", "x");
        private.set("NUL", "a\0b");
        let spec = SandboxSpec {
            command: vec!["tool".into()],
            env: vec![("LAB_SECRET".into(), "public".into())],
            private_env: private.clone(),
            ..SandboxSpec::default()
        };
        let args: Vec<String> = bwrap_args(&spec)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(!joined.contains("s3cret-value"), "{joined}");
        let public = args
            .windows(3)
            .position(|w| w == ["--setenv", "LAB_SECRET", "public"])
            .unwrap();
        let piped = args.windows(2).position(|w| w == ["--args", "0"]).unwrap();
        assert!(public < piped && piped < args.len() - 2, "{joined}");
        assert_eq!(
            private.args_data(),
            b"--setenv\0LAB_SECRET\0s3cret-value\0".to_vec()
        );
        assert_eq!(format!("{private:?}"), "[\"LAB_SECRET=<redacted>\"]");
        let none = SandboxSpec {
            private_env: PrivateEnv::default(),
            ..spec
        };
        assert!(!bwrap_args(&none).contains(&"--args".into()));
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill(
                "--port={port} --base={base_url} {workspace}",
                8888,
                "/labs/x/",
                "ann"
            ),
            "--port=8888 --base=/labs/x/ /home/user"
        );
    }
}
