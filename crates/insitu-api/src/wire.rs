//! Request and response bodies. Requests refuse unknown fields, so a typo in a
//! script is an error rather than a silently ignored setting. Times are RFC
//! 3339 strings in UTC.

use std::collections::BTreeMap;

use insitu_domain::{DatalabKind, Property, Role, TeamRole, VolumeMetadata};
use serde::{Deserialize, Serialize};

/// A list response. Listings carry their facet counts where they have facets.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct List<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginResponse {
    pub user: Me,
    /// Send back as `X-CSRF-Token` on state-changing requests made with the session cookie.
    pub csrf_token: String,
}

/// Exchanges a username and password for a personal API token (used by `insitu login`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenLoginRequest {
    pub username: String,
    pub password: String,
    /// A name that tells the tokens apart, e.g. the machine it lives on.
    pub token_name: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Me {
    pub username: String,
    pub role: Role,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    pub new_password: String,
    /// Revoke every API token of the account too (default: true). The
    /// account's browser sessions and lab sessions end either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_tokens: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The first characters of the token, to recognise it; the rest is never shown again.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// The secret is in this response only; the server keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenCreated {
    pub token: String,
    pub info: ApiToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatalabResources {
    pub cpu: f64,
    pub memory_bytes: u64,
    pub gpu: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatalabTags {
    pub domain: Vec<String>,
    pub mission: Vec<String>,
    pub properties: Vec<Property>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Datalab {
    pub name: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub kind: DatalabKind,
    pub license: String,
    pub resources: DatalabResources,
    pub tags: DatalabTags,
    /// Whether the datalab can be launched on a file (`file` in the
    /// launch request).
    pub opens_files: bool,
    /// For a datalab a user developed: its developer, author, state and
    /// popularity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developed: Option<crate::devlab::DevelopedDatalab>,
}

/// How many catalogue entries carry each value of a facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatalabList {
    pub items: Vec<Datalab>,
    /// Counts over the whole catalogue, per facet (`kind`, `domain`, `mission`, `property`).
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Volume {
    pub name: String,
    pub title: String,
    pub description: String,
    /// Where labs and pipeline steps see the volume (read-only).
    pub mount_path: String,
    pub zone: String,
    pub metadata: VolumeMetadata,
    /// Number of files in the volume when the server started.
    pub file_count: u64,
    pub size_bytes: u64,
    /// Whether the caller has added the volume to their volumes.
    pub in_my_volumes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VolumeList {
    pub items: Vec<Volume>,
    /// Counts per facet (`domain`, `mission`, `instrument`, `zone`).
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

/// A datalab definition file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CatalogueProblem {
    pub file: String,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub database: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    pub datalab: String,
    /// Data volumes to mount read-only (names from the volume catalogue).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// A file to open, as the lab sees it: an absolute path inside the
    /// mount path of one of `volumes` (e.g.
    /// `/media/data/deep-fields/skysim_m31_g.fits`). Only for datalabs
    /// that open files (`opens_files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// For a developed datalab: a published version (`1.2.0`) or, for its
    /// developer and the users it is shared with, a build version
    /// (`1.2.0-3`); the newest they may launch when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The datazone to run in (see `GET /api/v1/zones`); left out: the
    /// zone holding the volumes, or `local`. A zone that lacks one of the
    /// volumes is refused (`volumes_in_other_zones`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// One step of a launch and when it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaunchStep {
    pub step: String,
    /// Milliseconds since the launch was queued.
    pub at_ms: u64,
    /// What the step waits for, where there is more to say: a Slurm job's
    /// reason and place in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lab {
    pub id: String,
    pub datalab: String,
    pub volumes: Vec<String>,
    /// The file the lab was launched on, as the lab sees it.
    pub file: Option<String>,
    /// pending, starting, running, stopping, unknown (its scheduler
    /// cannot be asked now; it is asked again), stopped or failed.
    pub state: String,
    /// The datazone it runs in.
    pub zone: String,
    /// Why the lab failed or stopped.
    pub reason: Option<String>,
    /// Launch steps reached so far (queued, sandbox_prepared, process_started,
    /// waiting_for_readiness, ready); kept while the server runs.
    pub progress: Vec<LaunchStep>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    /// What happened to the lab while it ran, oldest first: each process
    /// the kernel killed for using more than the lab's memory (the lab runs
    /// on unless it was the tool itself). Absent when nothing happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<LabEvent>,
}

/// Any user's active lab as the operator's console shows it, with what
/// it uses now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperatorLab {
    pub lab: Lab,
    /// Its owner's username.
    pub owner: String,
    /// Seconds since it was launched.
    pub age_seconds: i64,
    /// Seconds since its users last used it through the proxy; absent
    /// where not known (a lab another server process serves).
    pub idle_seconds: Option<u64>,
    /// Memory its control group uses now, in bytes; absent without
    /// control groups (and for container labs).
    pub memory_bytes: Option<u64>,
    /// Its memory limit in bytes, when it has one.
    pub memory_limit_bytes: Option<u64>,
    /// CPU seconds it has used so far.
    pub cpu_seconds: Option<f64>,
}

/// Any user's queued or running run as the operator's console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperatorRun {
    pub id: String,
    /// Its owner's username.
    pub owner: String,
    /// The pipeline (`name` or `owner/name`) and its version.
    pub pipeline: String,
    pub version: String,
    /// queued, running, or (once stopped) cancelled.
    pub state: String,
    pub reason: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    /// Seconds since it was submitted.
    pub age_seconds: i64,
}

/// An operator stops a lab or cancels a run: the reason is what its user
/// reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorStopRequest {
    pub reason: String,
}

/// Something that happened to a lab while it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LabEvent {
    /// `memory_kill`: the kernel killed one of the lab's processes for
    /// using more than the lab's memory.
    pub kind: String,
    pub at: String,
    /// What happened, in words.
    pub message: String,
    /// The process concerned (its id on the host), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its command name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The lab's memory limit in bytes, for a memory kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// Whether it was the lab's tool itself (the lab then ended).
    pub tool: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LabLogs {
    pub lines: Vec<String>,
}

/// Where to send the browser to open a lab: the lab proxy's origin, with a
/// single-use ticket valid for a minute.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LabOpen {
    pub url: String,
}

/// The caller's workspace: what labs see at `path`, and how much it holds.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workspace {
    pub path: String,
    pub used_bytes: u64,
    pub files: u64,
}

/// One record of the caller's SAMP hub: a client registering or naming itself, a
/// message sent through the hub, or a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampRecord {
    /// Seconds since the Unix epoch.
    pub at: f64,
    /// `register`, `unregister`, `metadata`, `message`, `reply`,
    /// `hub_started` or `hub_stopped`.
    pub event: String,
    /// The client's public id (`cli#1`) for registrations and metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's declared name (`samp.name`), for `metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `notify`, `notify_all`, `call` or `call_all`, for `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// A client id, or `*` for every subscribed client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
    /// `samp.ok`, `samp.warning` or `samp.error`, for `reply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One asset found by the discovery portal: a datalab, pipeline, data
/// volume or dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchHit {
    /// `datalab:<name>`, `volume:<name>`, `dataset:<volume>/<path>`,
    /// `pipeline:<name>`.
    pub id: String,
    /// `datalab`, `pipeline`, `volume` or `dataset`.
    pub kind: String,
    /// The datalab's, pipeline's or volume's name; a dataset's path inside
    /// its volume.
    pub name: String,
    pub title: String,
    pub description: String,
    /// The volume a dataset lies in.
    pub volume: Option<String>,
    /// A dataset's path as a lab that mounts its volume sees it (a
    /// volume's mount path).
    pub file: Option<String>,
    pub properties: Vec<String>,
    pub domain: Vec<String>,
    pub mission: Vec<String>,
    pub instrument: Vec<String>,
    pub filter: Vec<String>,
    pub telescope: Option<String>,
    pub object: Option<String>,
    /// Start of the observation, ISO 8601 UTC.
    pub date_obs: Option<String>,
    /// Exposure time, seconds.
    pub exptime: Option<f64>,
    /// Centre, ICRS degrees.
    pub ra: Option<f64>,
    pub dec: Option<f64>,
    /// Radius of a circle around the centre holding the whole footprint
    /// (degrees; 0 without a footprint, 180 for the whole sky).
    pub extent_deg: Option<f64>,
    /// Degrees from the cone's centre to the dataset's centre (cone
    /// searches).
    pub distance_deg: Option<f64>,
    /// Image axes.
    pub image: Vec<u64>,
    /// Table columns.
    pub columns: Vec<String>,
    pub rows: Option<u64>,
    pub size_bytes: Option<u64>,
    /// `web` or `desktop`, for datalabs.
    pub datalab_kind: Option<String>,
    /// Whether a datalab can be launched on a file.
    pub opens_files: bool,
}

/// A page of discovery results with the counts of every facet.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchResponse {
    /// How many assets match in all.
    pub total: usize,
    pub items: Vec<SearchHit>,
    /// Per facet (`type`, `property`, `domain`, `mission`, `instrument`,
    /// `filter`, `year`, `volume`), its values with how many matches carry
    /// each, most first. A facet's counts ignore that facet's own
    /// selection.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

/// A file the harvester could not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HarvestProblem {
    pub volume: String,
    /// The file's path inside the volume.
    pub file: String,
    pub reason: String,
}

/// How the harvest of the data volumes into the discovery index is going,
/// or went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HarvestStatus {
    pub running: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The volume being walked.
    pub volume: Option<String>,
    /// Dataset files found (FITS files and files with a sidecar).
    pub files_seen: u64,
    /// Files read because they were new or had changed.
    pub files_read: u64,
    /// Files read and put in the index.
    pub files_indexed: u64,
    /// Files skipped because nothing about them changed.
    pub files_unchanged: u64,
    /// Datasets dropped because their file is gone.
    pub files_removed: u64,
    /// Files not taken, with the reason (the first 200).
    pub problems: Vec<HarvestProblem>,
    pub problem_count: u64,
}

/// A team the caller belongs to or is invited to.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Team {
    pub name: String,
    /// The caller's role in the team.
    pub role: TeamRole,
    /// Whether the caller accepted (a member) or is only invited.
    pub accepted: bool,
    /// Where the caller's labs see the team workspace (once accepted; from
    /// the next launch).
    pub workspace_path: String,
    /// Members and invitees, owners first.
    pub members: Vec<TeamMember>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamMember {
    pub username: String,
    pub role: TeamRole,
    /// `false` while the invitation is pending.
    pub accepted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    pub name: String,
}

/// Invites a user by username; they become a member when they accept.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub username: String,
    /// `member` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<TeamRole>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    pub role: TeamRole,
}

/// Who a lab is shared with and who is connected to it (the owner's view).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LabSharing {
    /// Usernames the owner shares the lab with.
    pub shared_with: Vec<String>,
    /// Users connected through the lab proxy now, the owner among them.
    pub connected: Vec<LabConnection>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LabConnection {
    pub username: String,
    /// Signed-in browser sessions in the lab.
    pub sessions: usize,
    /// Open WebSockets to the lab.
    pub websockets: usize,
}

/// CPU, memory and GPUs of a datazone; absent where not known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneResources {
    pub cpu: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub gpu: Option<u32>,
}

/// One datazone: where labs and runs execute, with the volumes it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Zone {
    pub name: String,
    pub title: String,
    /// `local` (this server's sandbox) or `slurm`.
    pub kind: String,
    /// The volumes it holds that the caller may see.
    pub volumes: Vec<String>,
    /// What it has in all (a Slurm zone: its nodes' figures).
    pub capacity: ZoneResources,
    /// What is free now.
    pub free: ZoneResources,
    /// The most one lab may ask for there.
    pub limits: ZoneResources,
    /// Why the capacity is unknown (its scheduler could not be asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Whether it is the default for work that names no volumes.
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ZoneList {
    pub items: Vec<Zone>,
}
