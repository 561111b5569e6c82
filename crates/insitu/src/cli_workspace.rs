//! `insitu workspace` and `insitu quota`: the caller's workspace and their
//! teams', with their quotas and the warning from 80 % on, and what their
//! labs may hold; an administrator's `quota set` to change a user's or a
//! team's.

use clap::Subcommand;
use insitu_api::{ComputeQuota, Quotas, TeamWorkspaceQuota, Workspace, WorkspaceQuota};
use reqwest::Method;

use crate::client::{Client, ClientError};

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Your workspace and your teams' workspaces: use, quota, warnings.
    Show {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Your quotas and what you use: workspaces (warned from 80 %), labs,
    /// CPU, memory, GPUs.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Change a user's quotas, or a team's workspace quota
    /// (administrators): `insitu quota set --user alice --workspace 20GiB
    /// --cpu 4`, `--team optics --workspace default`. What is not named
    /// stays; `default` sets the configured default back.
    Set {
        #[arg(long, conflicts_with = "team", required_unless_present = "team")]
        user: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Workspace size (`20GiB`, `500MiB`, bytes).
        #[arg(long)]
        workspace: Option<String>,
        /// Labs at once.
        #[arg(long, conflicts_with = "team")]
        labs: Option<String>,
        /// Cores' worth of CPU, all labs together.
        #[arg(long, conflicts_with = "team")]
        cpu: Option<String>,
        /// Memory, all labs together (`16GiB`).
        #[arg(long, conflicts_with = "team")]
        memory: Option<String>,
        #[arg(long, conflicts_with = "team")]
        gpus: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// A flag's value as JSON: `default` is null, otherwise what `parse` reads.
fn value<T: serde::Serialize>(
    raw: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<serde_json::Value, ClientError> {
    if raw == "default" {
        return Ok(serde_json::Value::Null);
    }
    let v = parse(raw).ok_or_else(|| ClientError::Other(format!("cannot read {raw:?}")))?;
    serde_json::to_value(v).map_err(|e| ClientError::Other(e.to_string()))
}

fn bytes(raw: &str) -> Option<u64> {
    insitu_domain::datalab::parse_bytes(raw).ok()
}

pub async fn quota(c: &Client, cmd: QuotaCommand) -> Result<(), ClientError> {
    match cmd {
        QuotaCommand::Show { json } => {
            let q: Quotas = c.call(Method::GET, "/api/v1/me/quotas", None).await?;
            if json {
                return print_json(&q);
            }
            println!("{}", line("your workspace", &q.workspace));
            for t in &q.teams {
                println!("{}", line(&format!("team {}", t.team), &t.quota));
            }
            println!("{}", compute_line(&q.compute));
            warn_all(&q.workspace, &q.teams);
            Ok(())
        }
        QuotaCommand::Set {
            user,
            team,
            workspace,
            labs,
            cpu,
            memory,
            gpus,
            json,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(w) = &workspace {
                body.insert("workspace_bytes".into(), value(w, bytes)?);
            }
            if let Some(n) = &labs {
                body.insert("labs".into(), value(n, |s| s.parse::<u64>().ok())?);
            }
            if let Some(n) = &cpu {
                body.insert("cpu".into(), value(n, |s| s.parse::<f64>().ok())?);
            }
            if let Some(m) = &memory {
                body.insert("memory_bytes".into(), value(m, bytes)?);
            }
            if let Some(n) = &gpus {
                body.insert("gpus".into(), value(n, |s| s.parse::<u64>().ok())?);
            }
            let body = serde_json::Value::Object(body);
            match (&user, &team) {
                (Some(u), _) => {
                    let path = format!("/api/v1/admin/quotas/users/{}", seg(u));
                    let q: Quotas = c.call(Method::PUT, &path, Some(&body)).await?;
                    if json {
                        return print_json(&q);
                    }
                    println!("{}", line(u, &q.workspace));
                    println!("{}", compute_line(&q.compute));
                    if let Some(p) = &q.workspace.pending {
                        println!("pending: {p}");
                    }
                }
                (None, Some(t)) => {
                    if body.get("workspace_bytes").is_none() {
                        return Err(ClientError::Other(
                            "a team has a workspace quota only: --workspace".into(),
                        ));
                    }
                    let path = format!("/api/v1/admin/quotas/teams/{}", seg(t));
                    let q: WorkspaceQuota = c.call(Method::PUT, &path, Some(&body)).await?;
                    if json {
                        return print_json(&q);
                    }
                    println!("{}", line(&format!("team {t}"), &q));
                    if let Some(p) = &q.pending {
                        println!("pending: {p}");
                    }
                }
                (None, None) => return Err(ClientError::Other("--user or --team".into())),
            }
            Ok(())
        }
    }
}

fn compute_line(q: &ComputeQuota) -> String {
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "no limit".to_owned());
    format!(
        "labs: {} of {}; CPU: {} of {}; memory: {} of {}; GPUs: {} of {}{}",
        q.labs_used,
        q.labs,
        q.cpu_used,
        or_none(q.cpu.map(|c| c.to_string())),
        human(q.memory_used_bytes),
        or_none(q.memory_bytes.map(human)),
        q.gpus_used,
        or_none(q.gpus.map(|g| g.to_string())),
        if q.set {
            " (set by an administrator)"
        } else {
            ""
        },
    )
}

pub async fn workspace(c: &Client, cmd: WorkspaceCommand) -> Result<(), ClientError> {
    match cmd {
        WorkspaceCommand::Show { json } => {
            let w: Workspace = c.call(Method::GET, "/api/v1/me/workspace", None).await?;
            if json {
                return print_json(&w);
            }
            println!(
                "{}",
                line(&format!("your workspace ({})", w.path), &w.quota)
            );
            for t in &w.teams {
                println!(
                    "{}",
                    line(&format!("team {} ({})", t.team, t.path), &t.quota)
                );
            }
            warn(&w);
            Ok(())
        }
    }
}

/// Prints each workspace's warning on standard error (from 80 % on).
pub fn warn(w: &Workspace) {
    warn_all(&w.quota, &w.teams);
}

fn warn_all(mine: &WorkspaceQuota, teams: &[TeamWorkspaceQuota]) {
    if let Some(msg) = &mine.warning {
        eprintln!("warning: your workspace: {msg}");
    }
    for t in teams {
        if let Some(msg) = &t.quota.warning {
            eprintln!("warning: team workspace {}: {msg}", t.team);
        }
    }
}

fn line(what: &str, q: &WorkspaceQuota) -> String {
    let limit = if q.enforced {
        String::new()
    } else {
        format!(
            " (not limited here: {})",
            q.not_enforced.as_deref().unwrap_or("plain directory")
        )
    };
    format!(
        "{what}: {} of {} ({} %), {} files{}{limit}",
        human(q.used_bytes),
        human(q.quota_bytes),
        q.used_percent,
        q.files,
        if q.quota_set {
            ", quota set by an administrator"
        } else {
            ""
        },
    )
}

/// Bytes in the largest binary unit they fill, to a tenth.
fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit < UNITS.len() - 1 && b >= 1u64 << (10 * (unit + 1)) {
        unit += 1;
    }
    if unit == 0 {
        return format!("{b} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let v = b as f64 / (1u64 << (10 * unit)) as f64;
    let text = format!("{v:.1}");
    format!("{} {}", text.trim_end_matches(".0"), UNITS[unit])
}

fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| ClientError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::human(512), "512 B");
        assert_eq!(super::human(64 << 20), "64 MiB");
        assert_eq!(super::human(10 << 30), "10 GiB");
        assert_eq!(super::human((3 << 19) + 5), "1.5 MiB");
    }
}
