//! Sandboxes as Slurm batch jobs: the same bubblewrap command line a lab
//! gets on this machine ([`crate::sandbox`]), run by a batch script on the
//! node Slurm allocates, and Slurm's own commands (`sbatch`, `scontrol`,
//! `squeue`, `scancel`, each given the cluster's `SLURM_CONF`) to follow
//! and end it.
//!
//! The job runs as the user who submits (the platform's); the script
//! drops to the sandbox's user with `setpriv` when it runs as root, as the
//! local supervisor does. The private variables reach bubblewrap on its
//! stdin from a file only the submitting user can read, removed once the
//! script has opened it; the system-call filter is the local one. The
//! platform's data directory (the script, the log) must be on a file system
//! the nodes share.
//!
//! Whether the scheduler answered matters as much as what it said: every
//! query returns [`SlurmError::Unreachable`] when Slurm's commands could
//! not reach the controller (or timed out), so the caller can tell "the
//! job ended" from "nobody knows".

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::write_filter;
use crate::record::sibling;
use crate::sandbox::{SandboxSpec, StepBinds, bwrap_args_in};

/// How long one Slurm command may take before the scheduler counts as
/// unreachable.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// A cluster: where its configuration is and where jobs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmCluster {
    /// Given to every command as `SLURM_CONF`; `None`: Slurm's default.
    pub conf: Option<PathBuf>,
    pub partition: Option<String>,
    pub account: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The command ran but could not reach the controller, or took too
    /// long: nothing is known.
    #[error("Slurm could not be reached: {0}")]
    Unreachable(String),
    /// The scheduler refused (a submission it will not take, an unknown
    /// partition…).
    #[error("Slurm refused: {0}")]
    Refused(String),
    #[error("cannot run Slurm's {command}: {source}")]
    Spawn {
        command: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write the job's files: {0}")]
    Files(std::io::Error),
}

/// What a lab's job asks of Slurm.
#[derive(Debug, Clone)]
pub struct BatchJob {
    pub name: String,
    /// A note on the job (`--comment`) naming what it is for.
    pub comment: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub gpus: u32,
    /// The job's time limit; `None`: the partition's.
    pub time_limit: Option<Duration>,
}

/// Where a job is, as the scheduler tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources; Slurm's reason (`Resources`, `Priority`…).
    Pending { reason: String },
    /// Allocated and running (or configuring) on `node`.
    Running { node: String },
    /// Ending: its processes are being cleaned up; how it ended is known
    /// once that is done.
    Completing,
    /// Ended: Slurm's state (`CANCELLED`, `COMPLETED`, `FAILED`,
    /// `TIMEOUT`, `NODE_FAIL`, `OUT_OF_MEMORY`…), its reason and exit code.
    Ended {
        state: String,
        reason: String,
        exit_code: String,
    },
    /// The controller answered and no longer knows the job (it ended long
    /// enough ago to be purged).
    Vanished,
}

/// A node as `scontrol show node` tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub addr: String,
    pub state: String,
    pub cpus: u32,
    pub cpus_allocated: u32,
    pub memory_bytes: u64,
    pub memory_allocated_bytes: u64,
    pub gpus: u32,
    pub gpus_allocated: u32,
}

/// Where the sandbox's script is written, beside its log.
pub fn script_path(log_path: &Path) -> PathBuf {
    sibling(log_path, "sbatch")
}

/// Where the private variables wait for the job, beside its log.
fn private_path(log_path: &Path) -> PathBuf {
    sibling(log_path, "private")
}

/// The mark the job leaves, beside its log, once it found the lab's port
/// free on its node, before the tool starts: until it is there, the
/// platform connects to nothing on the node.
pub fn port_checked_path(log_path: &Path) -> PathBuf {
    sibling(log_path, "port-free")
}

/// The job's exit status when another process already listens on the
/// lab's port on its node.
pub const PORT_TAKEN_EXIT: i32 = 75;

/// A word for `sh`, single-quoted.
fn quote(word: &[u8]) -> Vec<u8> {
    let mut out = b"'".to_vec();
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The batch script that runs `spec` under bubblewrap on a node, and
/// writes it with the private variables and the filter beside `log_path`.
/// Returns the script's path.
pub fn write_job_files(
    bwrap: &Path,
    spec: &SandboxSpec,
    log_path: &Path,
    port: u16,
) -> Result<PathBuf, SlurmError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(SlurmError::Files)?;
    }
    let filter = write_filter(log_path).map_err(SlurmError::Files)?;
    let private = private_path(log_path);
    let _ = std::fs::remove_file(&private);
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut f| f.write_all(&spec.private_env.args_data()))
        .map_err(SlurmError::Files)?;
    let checked = port_checked_path(log_path);
    let _ = std::fs::remove_file(&checked);
    let script = job_script(bwrap, spec, filter.as_deref(), &private, (port, &checked));
    let path = script_path(log_path);
    std::fs::write(&path, script).map_err(SlurmError::Files)?;
    Ok(path)
}

/// The script itself (see [`write_job_files`]).
fn job_script(
    bwrap: &Path,
    spec: &SandboxSpec,
    filter: Option<&Path>,
    private: &Path,
    (port, checked): (u16, &Path),
) -> Vec<u8> {
    let args: Vec<OsString> = bwrap_args_in(spec, &StepBinds::default(), &[]);
    // The options end at the `--` before the command: the GPUs Slurm
    // allocated join the environment there.
    let split = args.len().saturating_sub(spec.command.len() + 1);
    let mut s: Vec<u8> = Vec::new();
    s.extend_from_slice(
        b"#!/bin/sh\n# A lab's sandbox, started by Insitu on the node Slurm allocated.\n",
    );
    s.extend_from_slice(b"private=");
    s.extend(quote(private.as_os_str().as_bytes()));
    s.extend_from_slice(b"\nexec 0<\"$private\" || exit 125\nrm -f \"$private\"\n");
    if let Some(f) = filter {
        s.extend_from_slice(b"exec 4<");
        s.extend(quote(f.as_os_str().as_bytes()));
        s.extend_from_slice(b" || exit 125\n");
    }
    // Another process listening on the lab's port here would get the
    // lab's traffic (and its secret): the job ends instead, before the
    // platform connects (it waits for the mark).
    s.extend_from_slice(
        format!(
            "tables=/proc/net/tcp\n[ -r /proc/net/tcp6 ] && tables=\"$tables /proc/net/tcp6\"\n\
             if awk -v p=':{port:04X}' 'FNR > 1 && $4 == \"0A\" && substr($2, length($2) - 4) == p {{ found = 1 }} END {{ exit !found }}' $tables; then\n\
             \x20 echo \"insitu: port {port} is already in use on $(hostname): another process listens there\" >&2\n\
             \x20 exit {PORT_TAKEN_EXIT}\nfi\n: > "
        )
        .as_bytes(),
    );
    s.extend(quote(checked.as_os_str().as_bytes()));
    s.extend_from_slice(b" || exit 125\n");
    s.extend_from_slice(
        b"set --\nif [ -n \"${CUDA_VISIBLE_DEVICES:-}\" ]; then\n  set -- --setenv CUDA_VISIBLE_DEVICES \"$CUDA_VISIBLE_DEVICES\"\nfi\n",
    );
    s.extend_from_slice(b"drop=\n");
    if let Some((uid, gid)) = spec.run_as {
        s.extend_from_slice(
            format!(
                "if [ \"$(id -u)\" = 0 ]; then drop=\"setpriv --reuid={uid} --regid={gid} --clear-groups --\"; fi\n"
            )
            .as_bytes(),
        );
    }
    s.extend_from_slice(b"exec $drop ");
    s.extend(quote(bwrap.as_os_str().as_bytes()));
    if filter.is_some() {
        s.extend_from_slice(b" --seccomp 4");
    }
    for (i, a) in args.iter().enumerate() {
        if i == split {
            s.extend_from_slice(b" \"$@\"");
        }
        s.push(b' ');
        s.extend(quote(a.as_bytes()));
    }
    s.push(b'\n');
    s
}

impl SlurmCluster {
    fn command(&self, program: &'static str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        if let Some(conf) = &self.conf {
            cmd.env("SLURM_CONF", conf);
        }
        cmd.kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Runs a command; its stdout on success, or what went wrong.
    async fn run(
        &self,
        program: &'static str,
        args: &[OsString],
    ) -> Result<Result<String, String>, SlurmError> {
        let mut cmd = self.command(program);
        cmd.args(args);
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await {
            Err(_) => {
                return Err(SlurmError::Unreachable(format!(
                    "{program} did not answer within {} s",
                    COMMAND_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(source)) => {
                return Err(SlurmError::Spawn {
                    command: program,
                    source,
                });
            }
            Ok(Ok(out)) => out,
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(Ok(stdout));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if unreachable(&stderr) {
            return Err(SlurmError::Unreachable(stderr));
        }
        Ok(Err(if stderr.is_empty() {
            format!("{program} ended with {}", out.status)
        } else {
            stderr
        }))
    }

    /// Submits `script` as `job`, its output appended to `log_path`;
    /// returns the job id.
    pub async fn submit(
        &self,
        job: &BatchJob,
        script: &Path,
        log_path: &Path,
    ) -> Result<String, SlurmError> {
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            format!("--job-name={}", job.name).into(),
            format!("--comment={}", job.comment).into(),
            "--nodes=1".into(),
            "--ntasks=1".into(),
            format!("--cpus-per-task={}", job.cpus.max(1)).into(),
            format!("--mem={}M", job.memory_bytes.div_ceil(1 << 20).max(1)).into(),
            "--no-requeue".into(),
            "--open-mode=append".into(),
            "--chdir=/".into(),
        ];
        let mut output = OsString::from("--output=");
        output.push(log_path);
        args.push(output);
        if job.gpus > 0 {
            args.push(format!("--gres=gpu:{}", job.gpus).into());
        }
        if let Some(limit) = job.time_limit {
            args.push(format!("--time={}", limit.as_secs().div_ceil(60).max(1)).into());
        }
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}").into());
        }
        if let Some(a) = &self.account {
            args.push(format!("--account={a}").into());
        }
        args.push(script.into());
        match self.run("sbatch", &args).await? {
            Ok(out) => {
                // `--parsable`: `id` or `id;cluster`.
                let id = out.trim().split(';').next().unwrap_or("").to_owned();
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                    return Err(SlurmError::Refused(format!(
                        "sbatch answered {out:?}, not a job id"
                    )));
                }
                Ok(id)
            }
            Err(e) => Err(SlurmError::Refused(e)),
        }
    }

    /// Where job `id` is (`scontrol show job`).
    pub async fn job(&self, id: &str) -> Result<JobState, SlurmError> {
        let args: Vec<OsString> = vec!["show".into(), "job".into(), "-o".into(), id.into()];
        match self.run("scontrol", &args).await? {
            Ok(out) => Ok(parse_job(&out)),
            Err(e) if e.contains("Invalid job id") => Ok(JobState::Vanished),
            Err(e) => Err(SlurmError::Unreachable(e)),
        }
    }

    /// Job `id`'s place among the pending jobs of its partition, by
    /// priority (1: next).
    pub async fn queue_position(&self, id: &str) -> Result<Option<usize>, SlurmError> {
        let mut args: Vec<OsString> = vec![
            "-h".into(),
            "-t".into(),
            "PD".into(),
            "--sort=-p,i".into(),
            "-o".into(),
            "%i".into(),
        ];
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}").into());
        }
        match self.run("squeue", &args).await? {
            Ok(out) => Ok(out.lines().position(|l| l.trim() == id).map(|i| i + 1)),
            Err(e) => Err(SlurmError::Unreachable(e)),
        }
    }

    /// Cancels job `id`; one Slurm no longer knows counts as cancelled.
    pub async fn cancel(&self, id: &str) -> Result<(), SlurmError> {
        match self.run("scancel", &[id.into()]).await? {
            Ok(_) => Ok(()),
            Err(e) if e.contains("Invalid job id") => Ok(()),
            Err(e) => Err(SlurmError::Refused(e)),
        }
    }

    /// Cancels every job named `name` (of the submitting user): a job whose
    /// id was never recorded.
    pub async fn cancel_named(&self, name: &str) -> Result<(), SlurmError> {
        let arg = format!("--name={name}");
        match self.run("scancel", &[arg.into()]).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(SlurmError::Refused(e)),
        }
    }

    /// The cluster's nodes (those of the partition when it has one).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, SlurmError> {
        let args: Vec<OsString> = vec!["show".into(), "node".into(), "-o".into()];
        let out = match self.run("scontrol", &args).await? {
            Ok(out) => out,
            Err(e) => return Err(SlurmError::Unreachable(e)),
        };
        let nodes = out.lines().filter(|l| !l.trim().is_empty()).map(parse_node);
        Ok(match &self.partition {
            Some(p) => nodes
                .filter(|n| n.1.iter().any(|x| x == p))
                .map(|n| n.0)
                .collect(),
            None => nodes.map(|n| n.0).collect(),
        })
    }

    /// [`SlurmCluster::nodes`], given up after `limit` (a page waiting on
    /// it should not wait long).
    pub async fn nodes_within(&self, limit: Duration) -> Result<Vec<NodeInfo>, SlurmError> {
        match tokio::time::timeout(limit, self.nodes()).await {
            Ok(nodes) => nodes,
            Err(_) => Err(SlurmError::Unreachable(format!(
                "scontrol did not answer within {} s",
                limit.as_secs()
            ))),
        }
    }

    /// The address of node `name` (its `NodeAddr`).
    pub async fn node_addr(&self, name: &str) -> Result<String, SlurmError> {
        let args: Vec<OsString> = vec!["show".into(), "node".into(), "-o".into(), name.into()];
        match self.run("scontrol", &args).await? {
            Ok(out) => {
                let (node, _) = parse_node(out.trim());
                Ok(if node.addr.is_empty() {
                    name.to_owned()
                } else {
                    node.addr
                })
            }
            Err(e) => Err(SlurmError::Unreachable(e)),
        }
    }
}

/// Whether a command's complaint means the controller was not reached.
fn unreachable(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "unable to contact slurm controller",
        "connection refused",
        "connect failure",
        "socket timed out",
        "communication connection failure",
        "slurm_persist_conn",
        "zero bytes were transmitted",
    ]
    .iter()
    .any(|m| s.contains(m))
}

/// The `Key=Value` fields of one line of `scontrol -o` (a value may hold
/// spaces: words without `=` belong to the value before).
fn fields(line: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('/') || k == "CPUs/Task" => {
                out.push((k, v.to_owned()));
            }
            _ => {
                if let Some((_, v)) = out.last_mut() {
                    v.push(' ');
                    v.push_str(word);
                }
            }
        }
    }
    out
}

fn field<'a>(f: &'a [(&str, String)], key: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// A job from `scontrol show job -o`.
fn parse_job(out: &str) -> JobState {
    let Some(line) = out.lines().find(|l| l.contains("JobState=")) else {
        return JobState::Vanished;
    };
    let f = fields(line);
    let state = field(&f, "JobState").to_owned();
    let reason = field(&f, "Reason").to_owned();
    match state.as_str() {
        "PENDING" | "REQUEUED" | "SUSPENDED" | "RESV_DEL_HOLD" | "REQUEUE_HOLD" => {
            JobState::Pending { reason }
        }
        "COMPLETING" | "STAGE_OUT" | "SIGNALING" => JobState::Completing,
        "RUNNING" | "CONFIGURING" => {
            let host = field(&f, "BatchHost");
            let node = if host.is_empty() {
                field(&f, "NodeList")
            } else {
                host
            };
            JobState::Running {
                node: node.to_owned(),
            }
        }
        _ => JobState::Ended {
            state,
            reason,
            exit_code: field(&f, "ExitCode").to_owned(),
        },
    }
}

/// A node from `scontrol show node -o`, with its partitions.
fn parse_node(line: &str) -> (NodeInfo, Vec<String>) {
    let f = fields(line);
    let num = |k: &str| field(&f, k).parse::<u64>().unwrap_or(0);
    let gpus = |k: &str| -> u32 {
        field(&f, k)
            .split(',')
            .filter_map(|t| t.strip_prefix("gpu"))
            .filter_map(|t| {
                let t = t.split('(').next().unwrap_or(t);
                t.rsplit(':').next().and_then(|n| n.parse::<u32>().ok())
            })
            .sum()
    };
    let alloc_tres = field(&f, "AllocTRES");
    let gpus_allocated = alloc_tres
        .split(',')
        .filter_map(|t| t.strip_prefix("gres/gpu="))
        .filter_map(|n| n.parse::<u32>().ok())
        .sum();
    let node = NodeInfo {
        name: field(&f, "NodeName").to_owned(),
        addr: field(&f, "NodeAddr").to_owned(),
        state: field(&f, "State").to_owned(),
        cpus: u32::try_from(num("CPUTot")).unwrap_or(u32::MAX),
        cpus_allocated: u32::try_from(num("CPUAlloc")).unwrap_or(u32::MAX),
        memory_bytes: num("RealMemory").saturating_mul(1 << 20),
        memory_allocated_bytes: num("AllocMem").saturating_mul(1 << 20),
        gpus: gpus("Gres"),
        gpus_allocated,
    };
    let partitions = field(&f, "Partitions")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    (node, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_read_from_scontrol() {
        let pending = "JobId=5 JobName=wrap UserId=root(0) JobState=PENDING Reason=Resources Dependency=(null) NodeList= ExitCode=0:0";
        assert_eq!(
            parse_job(pending),
            JobState::Pending {
                reason: "Resources".into()
            }
        );
        let running = "JobId=6 JobState=RUNNING Reason=None NodeList=insitu-node BatchHost=insitu-node Command=/a b/c.sh WorkDir=/";
        assert_eq!(
            parse_job(running),
            JobState::Running {
                node: "insitu-node".into()
            }
        );
        let cancelled = "JobId=5 JobState=CANCELLED Reason=None ExitCode=0:15";
        assert_eq!(
            parse_job(cancelled),
            JobState::Ended {
                state: "CANCELLED".into(),
                reason: "None".into(),
                exit_code: "0:15".into()
            }
        );
        assert_eq!(parse_job(""), JobState::Vanished);
    }

    #[test]
    fn nodes_are_read_with_their_gpus() {
        let line = "NodeName=n1 Arch=x86_64 CPUAlloc=1 CPUEfctv=2 CPUTot=2 Gres=gpu:2 NodeAddr=10.0.0.7 RealMemory=2048 AllocMem=1024 State=MIXED Partitions=main,gpu AllocTRES=cpu=1,mem=1G,gres/gpu=1";
        let (n, parts) = parse_node(line);
        assert_eq!(n.addr, "10.0.0.7");
        assert_eq!((n.cpus, n.cpus_allocated), (2, 1));
        assert_eq!((n.gpus, n.gpus_allocated), (2, 1));
        assert_eq!(n.memory_bytes, 2048 << 20);
        assert_eq!(parts, ["main", "gpu"]);
    }

    #[test]
    fn the_script_quotes_every_word_and_places_the_gpus_before_the_command() {
        let spec = SandboxSpec {
            command: vec!["echo".into(), "it's $HOME".into()],
            run_as: Some((1000, 1000)),
            ..SandboxSpec::default()
        };
        let s = String::from_utf8(job_script(
            Path::new("/usr/bin/bwrap"),
            &spec,
            None,
            Path::new("/d/lab.private"),
            (8888, Path::new("/d/lab.port-free")),
        ))
        .unwrap();
        assert!(s.contains("'it'\\''s $HOME'"), "{s}");
        assert!(s.contains("\"$@\" '--' 'echo'"), "{s}");
        assert!(s.contains("setpriv --reuid=1000 --regid=1000"), "{s}");
        assert!(s.contains("rm -f \"$private\""), "{s}");
    }

    /// The script's own check, run for real with `true` in bubblewrap's
    /// place: a free port leaves the mark and starts the tool; a port
    /// something listens on ends the job with [`PORT_TAKEN_EXIT`] and no
    /// mark, saying so.
    #[test]
    fn the_job_ends_when_the_labs_port_is_taken_on_its_node() {
        let dir = tempfile::tempdir().unwrap();
        let run = |port: u16| {
            let log = dir.path().join("lab.log");
            let script = write_job_files(
                Path::new("/bin/true"),
                &SandboxSpec {
                    command: vec!["tool".into()],
                    ..SandboxSpec::default()
                },
                &log,
                port,
            )
            .unwrap();
            let out = std::process::Command::new("sh")
                .arg(&script)
                .output()
                .unwrap();
            (out, port_checked_path(&log).exists())
        };
        let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (out, marked) = run(port);
        assert_eq!(out.status.code(), Some(PORT_TAKEN_EXIT));
        assert!(!marked);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("port {port} is already in use")),
            "{said}"
        );
        drop(taken);
        let (out, marked) = run(port);
        assert!(out.status.success(), "{out:?}");
        assert!(marked);
    }

    #[test]
    fn only_connection_failures_count_as_unreachable() {
        assert!(unreachable(
            "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
        ));
        assert!(!unreachable(
            "slurm_load_jobs error: Invalid job id specified"
        ));
    }
}
