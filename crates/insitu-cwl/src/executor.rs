//! How a command is run: the [`Executor`] trait and the local process
//! executor. A Slurm executor or a bubblewrap sandbox executor (see
//! [`crate::sandbox`]) implement the same trait.

use crate::error::{CwlError, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

/// A fully prepared command: argv, working directory, environment, redirections.
#[derive(Clone, Debug, Default)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working (output) directory.
    pub cwd: PathBuf,
    /// Temporary directory offered to the tool.
    pub tmpdir: PathBuf,
    /// The complete environment of the process.
    pub env: BTreeMap<String, String>,
    /// File to connect to standard input.
    pub stdin: Option<PathBuf>,
    /// File receiving standard output.
    pub stdout: Option<PathBuf>,
    /// File receiving standard error.
    pub stderr: Option<PathBuf>,
    /// Wall-clock limit (`ToolTimeLimit`).
    pub timeout: Option<Duration>,
    /// Paths the tool reads (input files), for sandboxes that bind them.
    pub read_only_paths: Vec<PathBuf>,
}

/// Boxed future returned by executors.
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<i32>> + Send + 'a>>;

/// Something that can run a [`CommandSpec`] and report its exit code.
pub trait Executor: Send + Sync {
    /// Run the command to completion and return its exit status.
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a>;
}

/// Runs commands as plain local child processes.
#[derive(Debug, Default)]
pub struct LocalExecutor;

impl Executor for LocalExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            let Some(prog) = spec.argv.first() else {
                return Err(CwlError::Execution("empty command line".into()));
            };
            let mut cmd = tokio::process::Command::new(prog);
            cmd.args(&spec.argv[1..])
                .current_dir(&spec.cwd)
                .env_clear()
                .envs(&spec.env);
            cmd.kill_on_drop(true);
            cmd.stdin(match &spec.stdin {
                Some(p) => Stdio::from(
                    std::fs::File::open(p)
                        .map_err(|e| CwlError::Execution(format!("stdin {}: {e}", p.display())))?,
                ),
                None => Stdio::null(),
            });
            cmd.stdout(match &spec.stdout {
                Some(p) => Stdio::from(std::fs::File::create(p)?),
                None => Stdio::from(std::io::stderr()),
            });
            cmd.stderr(match &spec.stderr {
                Some(p) => Stdio::from(std::fs::File::create(p)?),
                None => Stdio::inherit(),
            });
            let mut child = cmd
                .spawn()
                .map_err(|e| CwlError::Execution(format!("cannot start '{prog}': {e}")))?;
            let status = match spec.timeout {
                Some(t) => match tokio::time::timeout(t, child.wait()).await {
                    Ok(s) => s?,
                    Err(_) => {
                        let _ = child.kill().await;
                        return Err(CwlError::Execution(format!(
                            "'{prog}' exceeded the time limit of {t:?}"
                        )));
                    }
                },
                None => child.wait().await?,
            };
            Ok(status.code().unwrap_or(-1))
        })
    }
}
