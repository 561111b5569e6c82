//! `insitu workspace`: the caller's workspace and their teams', with their
//! quotas and the warning from 80 % on; an administrator's `quota` to
//! change a user's or a team's.

use clap::Subcommand;
use insitu_api::{Workspace, WorkspaceQuota};
use reqwest::Method;

use crate::client::{Client, ClientError};

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Your workspace and your teams' workspaces: use, quota, warnings.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Set a user's or a team's workspace quota (administrators):
    /// `insitu workspace quota --user alice 20GiB`, `--team optics
    /// default`. A workspace in use grows at once.
    Quota {
        /// The user whose quota changes.
        #[arg(long, conflicts_with = "team", required_unless_present = "team")]
        user: Option<String>,
        /// The team whose quota changes.
        #[arg(long)]
        team: Option<String>,
        /// The new quota (`20GiB`, `500MiB`, bytes), or `default`.
        size: String,
        #[arg(long)]
        json: bool,
    },
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
        WorkspaceCommand::Quota {
            user,
            team,
            size,
            json,
        } => {
            let bytes = if size == "default" {
                None
            } else {
                Some(
                    insitu_domain::datalab::parse_bytes(&size)
                        .map_err(|e| ClientError::Other(format!("{size:?}: {e}")))?,
                )
            };
            let path = match (&user, &team) {
                (Some(u), _) => format!("/api/v1/admin/quotas/users/{}", seg(u)),
                (None, Some(t)) => format!("/api/v1/admin/quotas/teams/{}", seg(t)),
                (None, None) => return Err(ClientError::Other("--user or --team".into())),
            };
            let body = serde_json::json!({ "workspace_bytes": bytes });
            let q: WorkspaceQuota = c.call(Method::PUT, &path, Some(&body)).await?;
            if json {
                return print_json(&q);
            }
            let who = user.unwrap_or_else(|| format!("team {}", team.unwrap_or_default()));
            println!("{}", line(&who, &q));
            if let Some(p) = &q.pending {
                println!("pending: {p}");
            }
            Ok(())
        }
    }
}

/// Prints each workspace's warning on standard error (from 80 % on).
pub fn warn(w: &Workspace) {
    if let Some(msg) = &w.quota.warning {
        eprintln!("warning: your workspace: {msg}");
    }
    for t in &w.teams {
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
