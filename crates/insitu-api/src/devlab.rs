//! Request and response bodies of user-developed datalabs: drafts, builds,
//! sharing, publication and moderation.

use insitu_domain::{BuildState, DatalabKind, DevlabDefinition, DevlabSource, ReleaseState};
use serde::{Deserialize, Serialize};

/// A template a draft starts from.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DevlabTemplate {
    /// `web-tool`, `desktop-tool` or `python`.
    pub name: String,
    pub title: String,
    pub kind: DatalabKind,
}

/// A licence a developer may choose.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LicenseChoice {
    /// The SPDX identifier.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevlabRequest {
    /// The datalab's name in the catalogue (1-64 lowercase letters, digits,
    /// `-`, `_`).
    pub name: String,
    /// `web-tool`, `desktop-tool` or `python`.
    pub template: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Defaults to the developer's username.
    #[serde(default)]
    pub author: Option<String>,
}

/// A draft's new definition and source, both whole.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevlabRequest {
    pub definition: DevlabDefinition,
    pub source: DevlabSource,
}

/// One build of a datalab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Build {
    pub datalab: String,
    pub number: i64,
    /// `<version>-<number>`.
    pub build_version: String,
    /// The datalab's version when it was built.
    pub version: String,
    pub state: BuildState,
    pub image: String,
    /// For a failed build, the line that says why.
    pub error: Option<String>,
    /// Whether its image is still on the platform (old builds' images are
    /// removed: only the newest and the submitted or published ones stay).
    pub image_kept: bool,
    /// Whether it came from another platform's export.
    pub imported: bool,
    /// Its publication state, once submitted.
    pub publication: Option<ReleaseState>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_secs: Option<i64>,
}

/// A build submitted for publication and the moderator's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Release {
    pub datalab: String,
    pub build: i64,
    pub version: String,
    pub state: ReleaseState,
    /// Why a moderator rejected it.
    pub reason: Option<String>,
    pub submitted_by: String,
    pub submitted_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

/// A datalab in development, as its developer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Devlab {
    pub name: String,
    pub owner: String,
    pub template: String,
    /// `draft`, `submitted`, `published` or `rejected`.
    pub state: String,
    pub definition: DevlabDefinition,
    pub source: DevlabSource,
    /// Its published versions are in everyone's catalogue.
    pub public: bool,
    /// Users who see it while it is not public.
    pub shared_with: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub stars: i64,
    pub launches: i64,
    /// Newest first.
    pub builds: Vec<Build>,
    /// Newest first.
    pub releases: Vec<Release>,
}

/// Who sees a datalab besides its developer.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceRequest {
    /// Published versions in everyone's catalogue (after a moderator
    /// approved them).
    pub public: bool,
    /// Usernames who see the datalab and its newest good build.
    #[serde(default)]
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The build to publish.
    pub build: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why the datalab is refused (required to reject).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A submitted build, as a moderator reviews it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Submission {
    pub release: Release,
    pub owner: String,
    pub build_version: String,
    pub definition: DevlabDefinition,
    pub source: DevlabSource,
}

/// What the catalogue shows of a datalab a user developed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DevelopedDatalab {
    pub owner: String,
    pub author: String,
    /// `published` or `shared` (named users only).
    pub state: String,
    pub modified_at: String,
    pub stars: i64,
    pub launches: i64,
    /// Published versions, newest first; each stays launchable.
    pub versions: Vec<String>,
    /// Whether the caller starred it.
    pub starred: bool,
}
