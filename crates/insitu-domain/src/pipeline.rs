//! Pipelines and their runs as pure types: how a pipeline is named
//! ([`PipelineRef`]: a system pipeline by its name, a user's as
//! `owner/name`), its versions ([`PipelineVersion`]), the details every
//! version carries ([`PipelineMeta`], read from a system pipeline's
//! `pipeline.toml` or sent with a user's push), and the run state machine
//! ([`RunState`]).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::datalab::DefinitionError;
use crate::name::{Name, Username};
use crate::spdx;

/// The owner of the system catalogue in paths and references: no user
/// can be named so where pipelines are addressed (see [`PipelineRef`]).
pub const SYSTEM_OWNER: &str = "system";

/// Who a pipeline belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineOwner {
    /// The platform's catalogue, shipped with it (or pushed there by a
    /// developer): every user sees and runs it.
    System,
    /// One user's own, seen by them alone.
    User(Username),
}

/// A pipeline's name with its owner: written `name` for a system pipeline
/// and `owner/name` for a user's (`system/name` is the system's too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineRef {
    pub owner: PipelineOwner,
    pub name: Name,
}

/// Why a pipeline reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a pipeline: write NAME for a system pipeline or OWNER/NAME for a user's ({reason})"
)]
pub struct PipelineRefError {
    pub text: String,
    pub reason: String,
}

impl PipelineRef {
    pub fn system(name: Name) -> PipelineRef {
        PipelineRef {
            owner: PipelineOwner::System,
            name,
        }
    }

    /// The owner part of paths: `system` or the username.
    pub fn owner_str(&self) -> &str {
        match &self.owner {
            PipelineOwner::System => SYSTEM_OWNER,
            PipelineOwner::User(u) => u.as_str(),
        }
    }

    /// A reference from the two parts of a path (`/pipelines/{owner}/{name}`).
    pub fn from_parts(owner: &str, name: &str) -> Result<PipelineRef, PipelineRefError> {
        let refused = |reason: String| PipelineRefError {
            text: format!("{owner}/{name}"),
            reason,
        };
        let name: Name = name.parse().map_err(|e| refused(format!("name {e}")))?;
        let owner = if owner == SYSTEM_OWNER {
            PipelineOwner::System
        } else {
            PipelineOwner::User(owner.parse().map_err(|e| refused(format!("owner {e}")))?)
        };
        Ok(PipelineRef { owner, name })
    }
}

impl FromStr for PipelineRef {
    type Err = PipelineRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((owner, name)) => PipelineRef::from_parts(owner, name),
            None => PipelineRef::from_parts(SYSTEM_OWNER, s),
        }
    }
}

impl fmt::Display for PipelineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            PipelineOwner::System => f.write_str(self.name.as_str()),
            PipelineOwner::User(u) => write!(f, "{u}/{}", self.name),
        }
    }
}

/// A version of a pipeline: 1 to 32 characters, ASCII letters, digits,
/// `.`, `-`, `+`, `_`, starting with a letter or digit (`1.0.2`,
/// `0.3.0-beta`). Versions are kept forever and never change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineVersion(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a version is 1 to 32 ASCII letters, digits, '.', '-', '+' or '_', starting with a letter or digit"
)]
pub struct VersionError;

impl PipelineVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PipelineVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, VersionError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'));
        if ok {
            Ok(PipelineVersion(s.to_owned()))
        } else {
            Err(VersionError)
        }
    }
}

impl fmt::Display for PipelineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every version of a pipeline says about itself (the development
/// page's details panel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineMeta {
    pub description: String,
    pub version: PipelineVersion,
    /// Free words to find it by, at most 16 of at most 32 characters.
    pub keywords: Vec<String>,
    pub author: String,
    /// An SPDX licence expression.
    pub licence: String,
    /// The file of the version that holds the process to run.
    pub main: String,
}

/// The details as written: a system pipeline's `pipeline.toml`, or the
/// fields of a push.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipelineMeta {
    #[serde(default)]
    pub description: String,
    pub version: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub author: String,
    pub licence: String,
    #[serde(default = "default_main")]
    pub main: String,
}

fn default_main() -> String {
    "workflow.cwl".to_owned()
}

/// Whether `name` can name a file of a pipeline: a plain file name (no
/// `/`, not `.` or `..`, not hidden), 1 to 128 ASCII letters, digits, `.`,
/// `-`, `_`.
pub fn is_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl PipelineMeta {
    /// Reads a system pipeline's `pipeline.toml`.
    pub fn from_toml(text: &str) -> Result<PipelineMeta, Vec<DefinitionError>> {
        let raw: RawPipelineMeta = toml::from_str(text).map_err(|e| {
            vec![DefinitionError {
                field: "file".to_owned(),
                reason: e.message().to_owned(),
            }]
        })?;
        PipelineMeta::check(raw)
    }

    /// Checks every field, reporting each problem.
    pub fn check(raw: RawPipelineMeta) -> Result<PipelineMeta, Vec<DefinitionError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, reason: String| {
            errors.push(DefinitionError {
                field: field.to_owned(),
                reason,
            })
        };
        let version = match raw.version.parse::<PipelineVersion>() {
            Ok(v) => Some(v),
            Err(e) => {
                err("version", format!("{:?}: {e}", raw.version));
                None
            }
        };
        if let Err(reason) = spdx::check_expression(&raw.licence) {
            err("licence", reason.to_string());
        }
        if raw.description.chars().count() > 4000 {
            err("description", "must be at most 4000 characters".to_owned());
        }
        if raw.author.chars().count() > 200 {
            err("author", "must be at most 200 characters".to_owned());
        }
        if raw.keywords.len() > 16 {
            err("keywords", "at most 16".to_owned());
        }
        let mut keywords = Vec::new();
        for k in raw.keywords {
            let k = k.trim().to_owned();
            if k.is_empty() || k.chars().count() > 32 || k.chars().any(char::is_control) {
                err(
                    "keywords",
                    format!("{k:?}: a keyword is 1 to 32 printable characters"),
                );
            } else if !keywords.contains(&k) {
                keywords.push(k);
            }
        }
        if !is_file_name(&raw.main) {
            err(
                "main",
                format!("{:?} is not a plain file name of the pipeline", raw.main),
            );
        }
        match version {
            Some(version) if errors.is_empty() => Ok(PipelineMeta {
                description: raw.description.trim().to_owned(),
                version,
                keywords,
                author: raw.author.trim().to_owned(),
                licence: raw.licence.trim().to_owned(),
                main: raw.main,
            }),
            _ => Err(errors),
        }
    }
}

/// Where a run is in its life: queued → running → succeeded, failed or
/// cancelled; a queued run may be cancelled before it starts. Stored and
/// sent as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Waiting for a slot (the platform's, and the user's own limit).
    Queued,
    /// Its engine runs.
    Running,
    /// Ended with every output in the user's workspace.
    Succeeded,
    /// Ended with a failure; the run's reason says what.
    Failed,
    /// Stopped by its user (or an administrator).
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 5] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run has not ended yet.
    pub fn is_active(self) -> bool {
        matches!(self, RunState::Queued | RunState::Running)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run state {0:?}: expected one of queued, running, succeeded, failed, cancelled")]
pub struct UnknownRunState(pub String);

impl FromStr for RunState {
    type Err = UnknownRunState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRunState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_the_system_or_a_user() {
        let r: PipelineRef = "source-extraction".parse().unwrap();
        assert_eq!(r.owner, PipelineOwner::System);
        assert_eq!(r.to_string(), "source-extraction");
        assert_eq!(r.owner_str(), "system");
        let r: PipelineRef = "system/cutouts".parse().unwrap();
        assert_eq!(r.owner, PipelineOwner::System);
        let r: PipelineRef = "alice/my-flow".parse().unwrap();
        assert_eq!(r.owner, PipelineOwner::User("alice".parse().unwrap()));
        assert_eq!(r.to_string(), "alice/my-flow");
        for bad in ["", "a/b/c", "Alice/x", "alice/", "../x", "x y", "alice/.."] {
            assert!(bad.parse::<PipelineRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_short_plain_words() {
        for ok in ["1", "0.0.8", "1.2.3-beta.1", "2024_01", "1+build"] {
            assert!(ok.parse::<PipelineVersion>().is_ok(), "{ok}");
        }
        for bad in ["", ".1", "-1", "1/2", "1 2", &"9".repeat(33)] {
            assert!(bad.parse::<PipelineVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn details_are_checked_field_by_field() {
        let m = PipelineMeta::from_toml(
            "description = \"Finds stars\"\nversion = \"1.0.0\"\nkeywords = [\"photometry\", \"photometry\"]\n\
             author = \"Insitu\"\nlicence = \"Apache-2.0\"\nmain = \"workflow.cwl\"\n",
        )
        .unwrap();
        assert_eq!(m.keywords, ["photometry"]);
        assert_eq!(m.version.as_str(), "1.0.0");
        let errors = PipelineMeta::from_toml(
            "version = \"x y\"\nlicence = \"Not-A-Licence\"\nmain = \"../etc/passwd\"\n",
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["version", "licence", "main"]);
        assert!(
            PipelineMeta::from_toml("version = \"1\"\nlicence = \"MIT\"\nextra = 1\n").is_err()
        );
    }

    #[test]
    fn run_states_round_trip() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>().unwrap(), s);
        }
        assert!("done".parse::<RunState>().is_err());
        assert!(RunState::Queued.is_active() && !RunState::Cancelled.is_active());
    }
}
