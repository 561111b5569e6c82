//! One sandbox for a whole run, with a spawner inside.
//!
//! Making a bubblewrap sandbox costs milliseconds of mount and namespace
//! work that the kernel does one sandbox at a time, so a 1,000-job scatter
//! of a trivial tool spent most of its time making sandboxes. A run
//! therefore starts one sandbox, like a job's (the host read-only, private
//! `/tmp`, `/run` and `/home`, own pid, ipc and uts namespaces, no network),
//! that sees the run's directory read-write and the run's inputs (the job
//! order's files, the documents' directories) read-only. Inside it runs
//! this engine's binary as a spawner ([`serve`]): it reads one request a
//! line (JSON) on standard input, starts the command in its own process
//! group with the job's environment and redirections, and answers with its
//! exit status.
//!
//! A job runs there only when everything it reads is visible inside and
//! everything it writes is in the run's directory ([`RunSandbox::can_run`]);
//! a job that needs the network, or other paths, gets a sandbox of its own
//! as before. What the jobs of one run share: the run's directory (another
//! job's files are writable), `/tmp` and the pid namespace.
//! `--sandbox-per-step` gives every job its own sandbox.

use crate::error::{CwlError, Result};
use crate::executor::{CommandSpec, ExecFuture, Executor, resolve_program, step_binds};
use crate::sandbox::SandboxExecutor;
use insitu_launcher::sandbox::{Bind, SandboxSpec, StepBinds, bwrap_args_with, shown_from_host};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// The hidden subcommand that runs [`serve`].
pub const SUBCOMMAND: &str = "__spawner";

/// A line to the spawner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    /// Start a command.
    Run {
        id: u64,
        argv: Vec<String>,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        stdin: Option<PathBuf>,
        stdout: Option<PathBuf>,
        stderr: Option<PathBuf>,
        /// Where uncaptured output goes (appended), when not the spawner's
        /// standard error.
        #[serde(default)]
        log: Option<PathBuf>,
        /// The user and group the command runs as, when not the spawner's.
        #[serde(default)]
        run_as: Option<(u32, u32)>,
    },
    /// Kill a command's process group (time limit).
    Kill { id: u64 },
    /// Answer at once: the spawner is up (`code` 1 when it freezes
    /// finished jobs' output directories, 0 when it cannot).
    Ping { id: u64 },
    /// Make a directory read-only inside the sandbox (the output directory
    /// of a job that ran elsewhere).
    Freeze { id: u64, path: PathBuf },
}

/// A line from the spawner: the exit status, or why the command could not
/// start.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    #[serde(default)]
    code: Option<i32>,
    #[serde(default)]
    error: Option<String>,
}

/// The spawner's loop, inside the run's sandbox; returns when its standard
/// input closes (the engine is done or gone).
pub fn serve() -> i32 {
    let freezing = match take_mount_capability() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("[insitu-cwl spawner] {e}");
            return 1;
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let groups: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let reply = |out: &Mutex<std::io::Stdout>, r: &Reply| {
        if let (Ok(line), Ok(mut o)) = (serde_json::to_string(r), out.lock()) {
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("[insitu-cwl spawner] bad request: {e}");
                continue;
            }
        };
        match req {
            Request::Ping { id } => reply(
                &out,
                &Reply {
                    id,
                    code: Some(i32::from(freezing)),
                    error: None,
                },
            ),
            Request::Freeze { id, path } => {
                let error = freeze(&path).err();
                reply(
                    &out,
                    &Reply {
                        id,
                        code: Some(0),
                        error,
                    },
                );
            }
            Request::Kill { id } => {
                let pid = groups.lock().ok().and_then(|g| g.get(&id).copied());
                if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
            Request::Run {
                id,
                argv,
                cwd,
                env,
                stdin,
                stdout,
                stderr,
                log,
                run_as,
            } => match start(
                &argv,
                &cwd,
                &env,
                &Streams {
                    stdin,
                    stdout,
                    stderr,
                    log,
                },
                run_as,
            ) {
                Err(e) => reply(
                    &out,
                    &Reply {
                        id,
                        code: None,
                        error: Some(e),
                    },
                ),
                Ok(mut child) => {
                    if let Ok(mut g) = groups.lock() {
                        g.insert(id, child.id());
                    }
                    let (out, groups) = (out.clone(), groups.clone());
                    std::thread::spawn(move || {
                        let status = child.wait();
                        // The job's results are read-only to the jobs that
                        // use them (reported before they can start).
                        if freezing && let Err(e) = freeze(&cwd) {
                            eprintln!("[insitu-cwl spawner] {e}");
                        }
                        // What the job left running in its group ends with
                        // it, as in a sandbox of its own.
                        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                            let _ = rustix::process::kill_process_group(
                                pid,
                                rustix::process::Signal::KILL,
                            );
                        }
                        let r = match status {
                            Ok(s) => Reply {
                                id,
                                code: Some(s.code().unwrap_or(-1)),
                                error: None,
                            },
                            Err(e) => Reply {
                                id,
                                code: None,
                                error: Some(e.to_string()),
                            },
                        };
                        if let Ok(mut g) = groups.lock() {
                            g.remove(&id);
                        }
                        reply(&out, &r);
                    });
                }
            },
        }
    }
    0
}

/// The capabilities a step keeps as root, as a set (the same names as
/// [`insitu_launcher::sandbox::TOOL_CAPS`]).
fn tool_cap_set() -> rustix::thread::CapabilitySet {
    use rustix::thread::CapabilitySet as S;
    S::CHOWN
        | S::DAC_OVERRIDE
        | S::FOWNER
        | S::FSETID
        | S::KILL
        | S::SETGID
        | S::SETUID
        | S::NET_BIND_SERVICE
        | S::SYS_CHROOT
        | S::AUDIT_WRITE
}

/// Keep `CAP_SYS_ADMIN` for the spawner alone, when bubblewrap gave it
/// (with `CAP_SETPCAP`, see [`RunSandbox::start`]): drop it, and everything
/// else but the steps' own capabilities, from the bounding set, the
/// inheritable and the ambient sets, so what the spawner starts gets the
/// steps' capabilities at most. Returns whether it can freeze directories,
/// or why it must not start anything.
fn take_mount_capability() -> std::result::Result<bool, String> {
    use rustix::thread::{self as t, CapabilitySet};
    let caps = t::capabilities(None).map_err(|e| format!("cannot read capabilities: {e}"))?;
    let needed = CapabilitySet::SYS_ADMIN | CapabilitySet::SETPCAP;
    if !caps.effective.contains(needed) {
        // Not given (an unprivileged engine): nothing to keep or drop.
        return Ok(false);
    }
    let tools = tool_cap_set() & caps.permitted;
    // Every other capability this kernel knows; `SETPCAP` last, as
    // dropping needs it.
    let drop = CapabilitySet::all()
        .difference(tools | CapabilitySet::SETPCAP)
        .iter()
        .chain(std::iter::once(CapabilitySet::SETPCAP));
    let dropped = t::clear_ambient_capability_set().is_ok()
        && drop
            .into_iter()
            .all(|c| t::remove_capability_from_bounding_set(c).is_ok() || !known(c))
        && t::set_capabilities(
            None,
            t::CapabilitySets {
                effective: tools | CapabilitySet::SYS_ADMIN,
                permitted: tools | CapabilitySet::SYS_ADMIN,
                inheritable: CapabilitySet::empty(),
            },
        )
        .is_ok();
    if dropped {
        Ok(true)
    } else {
        Err("cannot drop the capabilities the steps must not have".into())
    }
}

/// Whether this kernel knows capability `c` (newer ones may be missing).
fn known(c: rustix::thread::CapabilitySet) -> bool {
    rustix::thread::capability_is_in_bounding_set(c).is_ok()
}

/// Make `dir` read-only in this mount namespace (a bind mount of itself,
/// remounted read-only).
fn freeze(dir: &Path) -> std::result::Result<(), String> {
    use rustix::mount::{MountFlags, mount_bind, mount_remount};
    mount_bind(dir, dir)
        .and_then(|()| mount_remount(dir, MountFlags::BIND | MountFlags::RDONLY, ""))
        .map_err(|e| format!("cannot make {} read-only: {e}", dir.display()))
}

/// Where a command's standard streams come from and go.
struct Streams {
    stdin: Option<PathBuf>,
    stdout: Option<PathBuf>,
    stderr: Option<PathBuf>,
    log: Option<PathBuf>,
}

/// Start one command inside the spawner, as `run_as` when given (the
/// switch from root leaves it no capabilities).
fn start(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    streams: &Streams,
    run_as: Option<(u32, u32)>,
) -> std::result::Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    let Some(prog) = argv.first() else {
        return Err("empty command line".into());
    };
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let mut cmd = std::process::Command::new(resolve_program(prog, path));
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0);
    if let Some((uid, gid)) = run_as {
        // Dropping from root also drops supplementary groups.
        cmd.uid(uid).gid(gid);
    }
    let (stdin, stdout, stderr) = (&streams.stdin, &streams.stdout, &streams.stderr);
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("stdin {}: {e}", p.display()));
    let create = |p: &Path| {
        std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(open(p)?),
        None => Stdio::null(),
    });
    let log = match &streams.log {
        Some(p) => Some(
            crate::executor::append_to(p)
                .map_err(|e| format!("cannot open the log {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let share = |l: &std::fs::File| {
        l.try_clone()
            .map_err(|e| format!("cannot share the job's log: {e}"))
    };
    cmd.stdout(match (stdout, &log) {
        (Some(p), _) => Stdio::from(create(p)?),
        (None, Some(l)) => Stdio::from(share(l)?),
        (None, None) => Stdio::from(std::io::stderr()),
    });
    cmd.stderr(match (stderr, log) {
        (Some(p), _) => Stdio::from(create(p)?),
        (None, Some(l)) => Stdio::from(l),
        (None, None) => Stdio::inherit(),
    });
    cmd.spawn()
        .map_err(|e| format!("cannot start '{prog}': {e}"))
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// The run's sandbox, seen from the engine.
pub struct RunSandbox {
    /// `None` once closed ([`RunSandbox::close`]).
    writer: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    pending: Pending,
    next: AtomicU64,
    alive: Arc<AtomicBool>,
    /// Kept so that the sandbox ends with the run (`kill_on_drop`).
    child: tokio::sync::Mutex<tokio::process::Child>,
    /// The first line its launcher wrote that is not a reply (a JSON
    /// object: where Slurm placed it, see [`Launch`]).
    hello: Arc<Mutex<Option<serde_json::Value>>>,
    /// The run's directory, read-write inside.
    root: PathBuf,
    /// Bound read-only besides what the host shows.
    read_only: Vec<PathBuf>,
    /// Host paths hidden inside (the binds above still show).
    hidden: Vec<PathBuf>,
    /// Whether the spawner makes finished jobs' output directories
    /// read-only (it can when the engine runs as root).
    freezing: bool,
    /// Output directories made read-only so far.
    frozen: Mutex<std::collections::HashSet<PathBuf>>,
    /// The user and group jobs run as, when not the spawner's.
    run_as: Option<(u32, u32)>,
}

/// How a run's sandbox is started: bubblewrap itself (the default), or
/// through a launcher that runs it elsewhere (`srun`, [`crate::slurm`]).
#[derive(Debug)]
pub struct Launch {
    /// The launcher and its arguments, before `bwrap` and its own; empty
    /// for bubblewrap itself.
    pub prefix: Vec<std::ffi::OsString>,
    /// The launcher's environment (bubblewrap's is empty).
    pub env: Vec<(String, String)>,
    /// How long to wait for the spawner's first answer; `None` waits until
    /// it answers or its launcher ends (a queued Slurm job).
    pub wait: Option<std::time::Duration>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            prefix: vec![],
            env: vec![],
            wait: Some(std::time::Duration::from_secs(30)),
        }
    }
}

impl RunSandbox {
    /// Start the sandbox of a run whose job directories are under `root`,
    /// showing `read_only` paths (the run's inputs) read-only.
    pub async fn start(
        base: &SandboxExecutor,
        root: &Path,
        read_only: Vec<PathBuf>,
        writable: &[PathBuf],
    ) -> std::result::Result<RunSandbox, String> {
        Self::launch(base, root, read_only, writable, Launch::default()).await
    }

    /// [`RunSandbox::start`] through `how`.
    pub async fn launch(
        base: &SandboxExecutor,
        root: &Path,
        read_only: Vec<PathBuf>,
        writable: &[PathBuf],
        how: Launch,
    ) -> std::result::Result<RunSandbox, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let root = root.canonicalize().map_err(|e| e.to_string())?;
        let mut read_only: Vec<PathBuf> = read_only
            .into_iter()
            .chain(base.expose.iter().cloned())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| !p.starts_with(&root))
            .collect();
        read_only.sort();
        read_only.dedup();
        let mut kept: Vec<PathBuf> = vec![];
        for p in read_only {
            if !kept.iter().any(|k| p.starts_with(k)) {
                kept.push(p);
            }
        }
        let mut binds: Vec<Bind> = kept
            .iter()
            .filter(|p| !base.shows_from_host(p))
            .map(|p| Bind {
                path: p.clone(),
                writable: false,
            })
            .collect();
        binds.push(Bind {
            path: exe.clone(),
            writable: false,
        });
        binds.push(Bind {
            path: root.clone(),
            writable: true,
        });
        // More places jobs write to that are not theirs alone (the jobs'
        // logs): read-write, like the run's directory.
        for w in writable.iter().filter_map(|w| w.canonicalize().ok()) {
            binds.push(Bind {
                path: w,
                writable: true,
            });
        }
        // As root, the spawner keeps what it needs to make finished jobs'
        // directories read-only, and drops it for everything it starts.
        // When tools run as another user it starts them as that user (and
        // makes their output files in directories that user owns); the
        // switch leaves them no capabilities.
        let mut keep_caps = crate::sandbox::tool_caps(base.run_as);
        if rustix::process::geteuid().is_root() {
            keep_caps.extend(["CAP_SYS_ADMIN".into(), "CAP_SETPCAP".into()]);
            if base.run_as.is_some() {
                keep_caps
                    .extend(["CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"].map(String::from));
            }
        }
        let spec = SandboxSpec {
            command: vec![exe.display().to_string(), SUBCOMMAND.into()],
            expose: base.expose.clone(),
            hidden: base.hidden.clone(),
            keep_caps,
            // The run's sandbox ends with the engine (and its jobs with it).
            die_with_parent: true,
            ..SandboxSpec::default()
        };
        let args = bwrap_args_with(
            &spec,
            &StepBinds {
                binds,
                workdir: Some(root.clone()),
            },
        );
        let mut cmd = match how.prefix.split_first() {
            None => tokio::process::Command::new(base.bwrap()),
            Some((launcher, rest)) => {
                let mut c = tokio::process::Command::new(launcher);
                c.args(rest).arg(base.bwrap());
                c
            }
        };
        cmd.args(args)
            .env_clear()
            .envs(how.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the run's sandbox: {e}"))?;
        let (Some(writer), Some(reader)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the run's sandbox has no pipes".into());
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let hello: Arc<Mutex<Option<serde_json::Value>>> = Arc::default();
        {
            let (pending, alive, hello) = (pending.clone(), alive.clone(), hello.clone());
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(r) = serde_json::from_str::<Reply>(&line) else {
                        if let (Ok(v @ serde_json::Value::Object(_)), Ok(mut h)) =
                            (serde_json::from_str(&line), hello.lock())
                        {
                            h.get_or_insert(v);
                        }
                        continue;
                    };
                    let tx = pending.lock().ok().and_then(|mut p| p.remove(&r.id));
                    if let Some(tx) = tx {
                        let _ = tx.send(r);
                    }
                }
                // The spawner is gone: whoever waits hears it from the
                // dropped senders.
                alive.store(false, Ordering::SeqCst);
                if let Ok(mut p) = pending.lock() {
                    p.clear();
                }
            });
        }
        let mut sandbox = RunSandbox {
            writer: tokio::sync::Mutex::new(Some(writer)),
            pending,
            next: AtomicU64::new(0),
            alive,
            child: tokio::sync::Mutex::new(child),
            hello,
            root,
            read_only: kept,
            hidden: base.hidden.clone(),
            freezing: false,
            frozen: Mutex::default(),
            run_as: base.run_as,
        };
        // Jobs go there only once it answers (bwrap may refuse a bind).
        let (id, rx) = sandbox.expect_reply();
        let answered = async {
            sandbox.send(&Request::Ping { id }).await.ok()?;
            rx.await.ok()
        };
        let answer = match how.wait {
            Some(limit) => tokio::time::timeout(limit, answered).await.ok().flatten(),
            None => answered.await,
        };
        match answer {
            Some(r) => {
                sandbox.freezing = r.code == Some(1);
                Ok(sandbox)
            }
            None => Err("the run's sandbox did not start".into()),
        }
    }

    /// Whether its spawner still answers.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// What its launcher said first (see [`Launch`]), if anything.
    pub fn hello(&self) -> Option<serde_json::Value> {
        self.hello.lock().ok().and_then(|h| h.clone())
    }

    /// End it: close the spawner's input (it returns, and the sandbox
    /// ends with it), wait up to `grace` for its launcher to end, then
    /// kill the launcher.
    pub async fn close(&self, grace: std::time::Duration) {
        self.writer.lock().await.take();
        let mut child = self.child.lock().await;
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }

    /// A fresh request id and the channel its reply will come on.
    fn expect_reply(&self) -> (u64, oneshot::Receiver<Reply>) {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        (id, rx)
    }

    /// Whether `p` (and where it leads) can be seen inside.
    fn visible(&self, p: &Path) -> bool {
        let seen = |q: &Path| {
            q.starts_with(&self.root)
                || self.read_only.iter().any(|r| q.starts_with(r))
                || (shown_from_host(q) && !self.hidden.iter().any(|h| q.starts_with(h)))
        };
        seen(p) && p.canonicalize().is_ok_and(|c| seen(&c))
    }

    /// Whether `spec` can run in this sandbox: no network, everything it
    /// writes in the run's directory, everything it reads visible.
    pub fn can_run(&self, spec: &CommandSpec) -> bool {
        if spec.network || spec.container.is_some() || !self.alive.load(Ordering::SeqCst) {
            return false;
        }
        let binds = step_binds(spec).binds;
        let Ok(frozen) = self.frozen.lock() else {
            return false;
        };
        binds.iter().all(|b| {
            if b.writable {
                b.path.canonicalize().is_ok_and(|c| {
                    c.starts_with(&self.root) && !c.ancestors().any(|a| frozen.contains(a))
                })
            } else {
                self.visible(&b.path)
            }
        }) && spec.stdin.as_ref().is_none_or(|p| self.visible(p))
    }

    async fn send(&self, req: &Request) -> Result<()> {
        let mut line = serde_json::to_string(req)
            .map_err(|e| CwlError::Execution(format!("cannot encode a job: {e}")))?;
        line.push('\n');
        let mut w = self.writer.lock().await;
        let Some(w) = w.as_mut() else {
            return Err(CwlError::Execution("the run's sandbox is closed".into()));
        };
        w.write_all(line.as_bytes())
            .await
            .map_err(|e| CwlError::Execution(format!("the run's sandbox is gone: {e}")))
    }

    /// Run `spec` inside and return its exit status.
    pub async fn run(&self, spec: &CommandSpec) -> Result<i32> {
        let (id, rx) = self.expect_reply();
        self.send(&Request::Run {
            id,
            argv: spec.argv.clone(),
            cwd: spec.cwd.clone(),
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stdin: spec.stdin.clone(),
            stdout: spec.stdout.clone(),
            stderr: spec.stderr.clone(),
            log: spec.log.clone(),
            run_as: self.run_as,
        })
        .await?;
        let prog = spec.argv.first().map(String::as_str).unwrap_or("");
        let gone = || CwlError::Execution(format!("the run's sandbox ended while '{prog}' ran"));
        let reply = match spec.timeout {
            None => rx.await.map_err(|_| gone())?,
            Some(t) => {
                let mut rx = rx;
                match tokio::time::timeout(t, &mut rx).await {
                    Ok(r) => r.map_err(|_| gone())?,
                    Err(_) => {
                        self.send(&Request::Kill { id }).await?;
                        let _ = rx.await;
                        return Err(CwlError::Execution(format!(
                            "'{prog}' exceeded the time limit of {t:?}"
                        )));
                    }
                }
            }
        };
        if self.freezing {
            self.note_frozen(&spec.cwd);
        }
        match (reply.code, reply.error) {
            (Some(c), _) => Ok(c),
            (None, e) => Err(CwlError::Execution(
                e.unwrap_or_else(|| "no exit status".into()),
            )),
        }
    }

    fn note_frozen(&self, dir: &Path) {
        if let (Ok(c), Ok(mut f)) = (dir.canonicalize(), self.frozen.lock()) {
            f.insert(c);
        }
    }

    /// Make the output directory of a job that ran in a sandbox of its own
    /// read-only here too.
    pub async fn freeze(&self, dir: &Path) {
        let inside = dir.canonicalize().is_ok_and(|c| c.starts_with(&self.root));
        if !self.freezing || !inside {
            return;
        }
        let (id, rx) = self.expect_reply();
        let sent = self
            .send(&Request::Freeze {
                id,
                path: dir.to_path_buf(),
            })
            .await;
        if sent.is_ok() && rx.await.is_ok_and(|r| r.error.is_none()) {
            self.note_frozen(dir);
        }
    }
}

/// Runs jobs in the run's sandbox when they can, else each in a sandbox of
/// its own.
pub struct SharedSandboxExecutor {
    per_job: SandboxExecutor,
    root: PathBuf,
    read_only: Vec<PathBuf>,
    /// Writable inside besides the run's directory (the jobs' logs).
    writable: Vec<PathBuf>,
    run: tokio::sync::OnceCell<Option<RunSandbox>>,
    quiet: bool,
}

impl SharedSandboxExecutor {
    /// An executor for a run under `root` whose inputs are `read_only`.
    pub fn new(
        per_job: SandboxExecutor,
        root: PathBuf,
        read_only: Vec<PathBuf>,
        quiet: bool,
    ) -> Self {
        SharedSandboxExecutor {
            per_job,
            root,
            read_only,
            writable: Vec::new(),
            run: tokio::sync::OnceCell::new(),
            quiet,
        }
    }

    /// The same executor whose shared sandbox also shows `dirs` writable.
    pub fn writing(self, dirs: Vec<PathBuf>) -> Self {
        SharedSandboxExecutor {
            writable: dirs,
            ..self
        }
    }
}

impl Executor for SharedSandboxExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            let shared = self
                .run
                .get_or_init(|| async {
                    match RunSandbox::start(
                        &self.per_job,
                        &self.root,
                        self.read_only.clone(),
                        &self.writable,
                    )
                    .await
                    {
                        Ok(s) => Some(s),
                        Err(why) => {
                            if !self.quiet {
                                eprintln!(
                                    "[insitu-cwl] warning: {why}; one sandbox per job instead"
                                );
                            }
                            None
                        }
                    }
                })
                .await;
            match shared {
                Some(s) if s.can_run(spec) => s.run(spec).await,
                Some(s) => {
                    let r = self.per_job.run(spec).await;
                    s.freeze(&spec.cwd).await;
                    r
                }
                None => self.per_job.run(spec).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use insitu_launcher::sandbox::TOOL_CAPS;

    #[test]
    fn the_spawner_passes_on_the_capabilities_steps_keep() {
        let set = super::tool_cap_set();
        let names = format!("{set:?}");
        for name in TOOL_CAPS {
            assert!(
                names.contains(name.trim_start_matches("CAP_")),
                "{name}: {names}"
            );
        }
        assert_eq!(set.iter().count(), TOOL_CAPS.len());
        assert!(!set.contains(rustix::thread::CapabilitySet::SYS_ADMIN));
    }
}
