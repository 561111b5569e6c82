//! The `insitu-cwl` command line (reached as `insitu cwl …`): arguments
//! parsed by hand, so that the cwltool flags the conformance suite passes
//! and this engine does not use are ignored without configuration.

use crate::options::{ContainerMode, Grouping, RunOptions, SandboxMode, SlurmOptions};
use crate::{loader, run, spawner, workflow};
use serde_json::Value;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: insitu-cwl run [--outdir DIR] [--quiet] [--parallel N] [--no-container | --reject-docker] [--js-timeout=SECS]\n         [--no-sandbox] [--sandbox-per-step] [--sandbox-expose DIR]... [--hide DIR]... [--provenance DIR]\n         [--cachedir DIR] [--allow-root DIR]... [--run-as UID:GID] [--events FILE] [--step-logs DIR]\n         [--workdir DIR] [--slurm | --slurm-conf FILE] [--slurm-partition P] [--slurm-account A]\n         [--slurm-grouping allocations|none] [--slurm-idle SECS] [--slurm-max-allocations N]\n         TOOL.cwl[#id] [JOB.yml|JOB.json]\n       insitu-cwl validate [--allow-root DIR]... TOOL.cwl[#id]\n       insitu-cwl describe [--allow-root DIR]... TOOL.cwl[#id]\n  --cachedir DIR  reuse tool jobs stored in DIR (same tool, requirements and inputs by content)\n                  instead of running them again, and store new successful ones there\n  --no-sandbox    run tools as plain processes; without it they run in a bubblewrap sandbox,\n                  and a run where none can be made fails (exit 69) before any tool runs\n  --allow-root DIR  read documents, job orders and inputs only from under DIR (repeatable;\n                  links resolved); container builds then get the network only with NetworkAccess\n  --run-as UID:GID  run every tool as this unprivileged user and group, without capabilities\n                  (the engine must run as root)\n  --hide DIR      no job's sandbox shows DIR (repeatable); what a job is given under it still shows\n  --events FILE   append the run's events to FILE as JSON lines: steps and jobs started and\n                  finished (step, scatter index, times, exit code, log), the run's end\n  --step-logs DIR  with --events: each tool job's uncaptured output goes to a log in DIR\n  --workdir DIR   make the jobs' directories in DIR and keep them after the run\n  --slurm         run tool jobs on a Slurm cluster (--slurm-conf: its slurm.conf), with the cores,\n                  memory, GPUs and time their requirements ask for, in the same sandbox; jobs share\n                  allocations the run holds (released after --slurm-idle, default 10 s) unless\n                  --slurm-grouping none (a batch job each). The run's directory (--workdir), inputs\n                  and this program must be on a file system the nodes share\n  describe        print the process as JSON: inputs (types, defaults), outputs, steps, links";

/// What the command line asks for.
enum Command {
    Run {
        tool: String,
        job: Option<String>,
    },
    Validate {
        tool: String,
    },
    Describe {
        tool: String,
    },
    Help,
    Version,
    Usage,
    /// A flag with a value that does not parse.
    BadFlag(String),
}

/// The whole command-line interface; returns the process exit code
/// (0 success, 33 unsupported requirement, 69 no sandbox, 1 other
/// failures, 2 usage).
pub fn cli_main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().map(String::as_str) == Some(spawner::SUBCOMMAND) {
        return spawner::serve();
    }
    let (command, opts) = parse(&args);
    match command {
        Command::Help => {
            println!("{USAGE}");
            0
        }
        Command::Version => {
            println!("insitu-cwl {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Usage => {
            eprintln!("{USAGE}");
            2
        }
        Command::BadFlag(why) => {
            eprintln!("{why}\n{USAGE}");
            2
        }
        Command::Validate { tool } => validate(&tool, &opts),
        Command::Describe { tool } => describe(&tool, &opts),
        Command::Run { tool, job } => run_tool(&tool, job.as_deref(), &opts),
    }
}

/// The command and the run's options. Unknown `--flags` (cwltool's) are
/// ignored; a value that does not parse keeps the default.
fn parse(args: &[String]) -> (Command, RunOptions) {
    let mut opts = RunOptions {
        outdir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        ..RunOptions::default()
    };
    let mut positional = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        // `--flag=value`, or `--flag value` (taking the next argument).
        let mut value = |flag: &str| -> Option<String> {
            if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_string());
            }
            (a == flag).then(|| {
                i += 1;
                args.get(i).cloned()
            })?
        };
        if let Some(v) = value("--outdir") {
            opts.outdir = PathBuf::from(v);
        } else if let Some(v) = value("--parallel") {
            opts.parallel = v.parse().unwrap_or(opts.parallel);
        } else if let Some(v) = a.strip_prefix("--js-timeout=") {
            if let Ok(secs) = v.parse::<f64>() {
                opts.js_timeout = std::time::Duration::from_secs_f64(secs.max(0.01));
            }
        } else if let Some(v) = value("--provenance") {
            opts.provenance = Some(PathBuf::from(v));
        } else if let Some(v) = value("--cachedir") {
            opts.cachedir = Some(PathBuf::from(v));
        } else if let Some(v) = value("--events") {
            opts.events = Some(PathBuf::from(v));
        } else if let Some(v) = value("--step-logs") {
            opts.step_logs = Some(PathBuf::from(v));
        } else if let Some(v) = value("--workdir") {
            opts.workdir = Some(PathBuf::from(v));
        } else if let Some(v) = value("--hide") {
            opts.hidden.push(PathBuf::from(v));
        } else if let Some(v) = value("--sandbox-expose") {
            opts.sandbox_expose.push(PathBuf::from(v));
        } else if let Some(v) = value("--allow-root") {
            opts.confinement
                .roots
                .get_or_insert_with(Vec::new)
                .push(PathBuf::from(v));
        } else if let Some(v) = value("--slurm-conf") {
            slurm(&mut opts).conf = Some(PathBuf::from(v));
        } else if let Some(v) = value("--slurm-partition") {
            slurm(&mut opts).partition = Some(v);
        } else if let Some(v) = value("--slurm-account") {
            slurm(&mut opts).account = Some(v);
        } else if let Some(v) = value("--slurm-grouping") {
            slurm(&mut opts).grouping = match v.as_str() {
                "allocations" => Grouping::Allocations,
                "none" => Grouping::None,
                _ => {
                    let why = format!("--slurm-grouping {v}: expected 'allocations' or 'none'");
                    return (Command::BadFlag(why), opts);
                }
            };
        } else if let Some(v) = value("--slurm-idle") {
            match v.parse::<f64>() {
                Ok(secs) if secs >= 0.0 && secs.is_finite() => {
                    slurm(&mut opts).idle = std::time::Duration::from_secs_f64(secs);
                }
                _ => {
                    let why = format!("--slurm-idle {v}: expected a number of seconds");
                    return (Command::BadFlag(why), opts);
                }
            }
        } else if let Some(v) = value("--slurm-max-allocations") {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => slurm(&mut opts).max_allocations = n,
                _ => {
                    let why = format!("--slurm-max-allocations {v}: expected a positive number");
                    return (Command::BadFlag(why), opts);
                }
            }
        } else if let Some(v) = value("--run-as") {
            match parse_ids(&v) {
                Some(ids) => opts.confinement.run_as = Some(ids),
                None => {
                    let why = format!("--run-as {v}: expected UID:GID, two numbers");
                    return (Command::BadFlag(why), opts);
                }
            }
        } else {
            match a {
                "--reject-docker" => opts.containers = ContainerMode::Reject,
                "--no-container" => opts.containers = ContainerMode::Off,
                "--no-sandbox" => opts.sandbox = SandboxMode::Off,
                // The default; still accepted.
                "--require-sandbox" => opts.sandbox = SandboxMode::Required,
                "--sandbox-per-step" => opts.sandbox_per_step = true,
                "--slurm" => {
                    slurm(&mut opts);
                }
                "--quiet" => opts.quiet = true,
                "--help" | "-h" => return (Command::Help, opts),
                "--version" => return (Command::Version, opts),
                // cwltool-style flags this engine does not use (--debug,
                // --tmpdir-prefix=...).
                _ if a.starts_with("--") => {}
                _ => positional.push(a.to_string()),
            }
        }
        i += 1;
    }
    opts.progress = !opts.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // The invoking user's home stays visible (read-only) in sandboxes, like
    // the rest of the host: tools are often installed there. Not in a run
    // made on someone else's behalf, whose tools see only what it shows.
    if !opts.confinement.is_confined() {
        opts.sandbox_expose.extend(
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|h| h.is_absolute() && h.parent().is_some()),
        );
    }
    let (verb, rest) = match positional.first().map(String::as_str) {
        Some(v @ ("run" | "validate" | "describe")) => (v, &positional[1..]),
        _ => ("run", &positional[..]),
    };
    let command = match (rest.first(), verb) {
        (None, _) => Command::Usage,
        (Some(tool), "validate") => Command::Validate { tool: tool.clone() },
        (Some(tool), "describe") => Command::Describe { tool: tool.clone() },
        (Some(tool), _) => Command::Run {
            tool: tool.clone(),
            job: rest.get(1).cloned(),
        },
    };
    (command, opts)
}

/// The run's Slurm options, made when a first `--slurm…` flag names them.
fn slurm(opts: &mut RunOptions) -> &mut SlurmOptions {
    opts.slurm.get_or_insert_with(|| SlurmOptions::new(None))
}

/// `UID:GID` as numbers.
fn parse_ids(v: &str) -> Option<(u32, u32)> {
    let (u, g) = v.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// `insitu-cwl validate TOOL`: load and check, run nothing.
fn validate(tool: &str, opts: &RunOptions) -> i32 {
    let checked = run::access_of(&opts.confinement)
        .and_then(|access| loader::load_with(tool, access))
        .and_then(|l| {
            if l.process.get("class").and_then(Value::as_str) == Some("Workflow") {
                workflow::check_workflow(&l.process)?;
            }
            Ok(())
        });
    match checked {
        Ok(()) => {
            println!("{tool} is valid CWL");
            0
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.exit_code()
        }
    }
}

/// `insitu-cwl describe TOOL`: the checked process as JSON on stdout
/// ([`crate::describe`]).
fn describe(tool: &str, opts: &RunOptions) -> i32 {
    let described = run::access_of(&opts.confinement)
        .and_then(|access| loader::load_with(tool, access))
        .and_then(|l| {
            if l.process.get("class").and_then(Value::as_str) == Some("Workflow") {
                workflow::check_workflow(&l.process)?;
            }
            Ok(crate::describe::describe(&l.process))
        });
    match described {
        Ok(d) => {
            let text = serde_json::to_string_pretty(&d).unwrap_or_else(|_| "{}".into());
            let _ = writeln!(std::io::stdout(), "{text}");
            0
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.exit_code()
        }
    }
}

/// `insitu-cwl run TOOL [JOB]`: the output object on stdout.
fn run_tool(tool: &str, job: Option<&str>, opts: &RunOptions) -> i32 {
    let job = match job {
        Some(j) if j != "-" => match run::access_of(&opts.confinement)
            .and_then(|access| loader::load_job_with(Path::new(j), access))
        {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{j}: {e}");
                run::failed_before_start(opts, &e);
                return 1;
            }
        },
        _ => Value::Object(Default::default()),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.parallel.clamp(1, 16))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return 1;
        }
    };
    let result = match &opts.slurm {
        None => rt.block_on(run::run(tool, job, opts)),
        // Stopped (SIGTERM, SIGINT), the run's Slurm jobs are cancelled
        // before the engine ends: none is left on the cluster.
        Some(slurm) => match rt.block_on(until_stopped(run::run(tool, job, opts))) {
            Some(r) => r,
            None => {
                rt.block_on(crate::slurm::cancel_all(slurm));
                eprintln!("{tool}: stopped; its Slurm jobs are cancelled");
                return 143;
            }
        },
    };
    match result {
        Ok(out) => {
            let text = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into());
            let _ = writeln!(std::io::stdout(), "{text}");
            0
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.exit_code()
        }
    }
}

/// `run`'s result, or `None` once the engine is asked to stop (SIGTERM or
/// SIGINT); `run` is dropped then, and with it what it started.
async fn until_stopped<T>(run: impl std::future::Future<Output = T>) -> Option<T> {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Some(run.await);
    };
    tokio::select! {
        r = run => Some(r),
        _ = term.recv() => None,
        _ = int.recv() => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn confinement_flags_and_what_sandboxes_show() {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let (cmd, opts) = parse(&args(&["run", "t.cwl", "job.yml"]));
        assert!(matches!(cmd, Command::Run { .. }));
        assert_eq!(opts.confinement, Default::default());
        if let Some(h) = home.as_ref().filter(|h| h.parent().is_some()) {
            assert!(opts.sandbox_expose.contains(h), "{:?}", opts.sandbox_expose);
        }
        let (_, opts) = parse(&args(&[
            "--allow-root",
            "/a",
            "--allow-root=/b",
            "--run-as",
            "1000:100",
            "--sandbox-expose",
            "/opt/tools",
            "t.cwl",
        ]));
        assert_eq!(
            opts.confinement.roots,
            Some(vec![PathBuf::from("/a"), PathBuf::from("/b")])
        );
        assert_eq!(opts.confinement.run_as, Some((1000, 100)));
        // A confined run's tools see the engine's home only when told to.
        assert_eq!(opts.sandbox_expose, [PathBuf::from("/opt/tools")]);
        for bad in ["1000", "a:b", "1000:"] {
            let (cmd, _) = parse(&args(&["--run-as", bad, "t.cwl"]));
            assert!(matches!(cmd, Command::BadFlag(_)), "{bad}");
        }
    }
}
