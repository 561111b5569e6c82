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
    /// The account's e-mail address, which an OpenID provider's verified
    /// address links to where the provider is configured with
    /// `link_by_email`; `""` removes it.
    #[serde(default)]
    pub email: Option<String>,
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
    /// The zone it runs in (`local`: this platform's own machine).
    pub zone: String,
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
    /// CPU cores it used on average since the platform's last usage
    /// sample (its CPU now); absent before its first sample.
    pub cpu_cores: Option<f64>,
}

/// The platform's use over time, in steps (`GET /api/v1/admin/usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageSeries {
    /// Unix seconds: the first step's start and the series' end.
    pub from: i64,
    pub to: i64,
    pub step_seconds: i64,
    pub points: Vec<UsagePoint>,
}

/// One step of a usage series; the values are absent for a step without a
/// sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsagePoint {
    /// The step's start (RFC 3339).
    pub at: String,
    /// Samples taken in the step.
    pub samples: u64,
    /// The most labs running at a sample.
    pub labs_running: Option<u64>,
    /// CPU hours the labs used in the step.
    pub cpu_hours: Option<f64>,
    /// The most bytes the user and team workspaces held at a sample.
    pub storage_bytes: Option<u64>,
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
    /// The datazone it executes in.
    pub zone: String,
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

/// The caller's workspace: what labs see at `path`, how much it holds, and
/// its quota; with the workspaces of the caller's teams.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workspace {
    pub path: String,
    pub used_bytes: u64,
    pub files: u64,
    pub quota: WorkspaceQuota,
    /// The workspaces of the teams the caller is a member of.
    pub teams: Vec<TeamWorkspaceQuota>,
}

/// A workspace's quota and use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceQuota {
    /// The quota, in bytes.
    pub quota_bytes: u64,
    /// Whether an administrator set this quota (otherwise: the configured
    /// default).
    pub quota_set: bool,
    pub used_bytes: u64,
    pub files: u64,
    /// What the workspace's file system holds for files in all (about the
    /// quota; the kernel's limit); null while the workspace is a plain
    /// directory or not in use yet.
    pub capacity_bytes: Option<u64>,
    /// Use against the capacity (or, a plain directory, the quota), in
    /// percent; 100 or more once full.
    pub used_percent: f64,
    /// Nothing more can be written (or, where not enforced, the quota is
    /// passed).
    pub full: bool,
    /// From 80 % of the quota on: what to do.
    pub warning: Option<String>,
    /// Whether the kernel stops writes past the quota ("No space left on
    /// device").
    pub enforced: bool,
    /// Why it does not, where it does not.
    pub not_enforced: Option<String>,
    /// A new quota not reached yet, and why.
    pub pending: Option<String>,
}

/// A team's workspace, as its members see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamWorkspaceQuota {
    pub team: String,
    /// Where labs see it.
    pub path: String,
    pub quota: WorkspaceQuota,
}

/// What a user's active labs may hold at once (each counted with its
/// datalab's resources) and hold now; a limit of null: none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputeQuota {
    pub labs: u64,
    pub labs_used: u64,
    /// Cores' worth of CPU.
    pub cpu: Option<f64>,
    pub cpu_used: f64,
    pub memory_bytes: Option<u64>,
    pub memory_used_bytes: u64,
    pub gpus: Option<u64>,
    pub gpus_used: u64,
    /// Whether an administrator set any of these (otherwise: the defaults).
    pub set: bool,
}

/// A user's quotas and what they use: their workspace, their teams'
/// workspaces, their labs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quotas {
    pub workspace: WorkspaceQuota,
    pub teams: Vec<TeamWorkspaceQuota>,
    pub compute: ComputeQuota,
}

/// An administrator's change of a user's quotas: a field left out keeps
/// its quota, null sets the configured default back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserQuotaRequest {
    /// Bytes.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub workspace_bytes: Option<Option<u64>>,
    /// Labs at once.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub labs: Option<Option<u64>>,
    /// Cores' worth of CPU, all labs together.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<Option<f64>>,
    /// Bytes of memory, all labs together.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_bytes: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpus: Option<Option<u64>>,
}

/// A field that is there, null or not (left out, it is `None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An administrator's change of a team's workspace quota.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuotaRequest {
    /// Bytes; null: back to the configured default.
    pub workspace_bytes: Option<u64>,
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

/// A team's new name.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTeamRequest {
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
    /// Teams the owner shares the lab with: their accepted members may use
    /// it for as long as they are members.
    #[serde(default)]
    pub teams: Vec<String>,
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

/// An application for access, sent by someone without an account.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessApplication {
    /// The applicant's name (1 to 100 characters).
    pub name: String,
    /// Where the platform could write to them (it sends no e-mail itself).
    pub email: String,
    /// Institute, team or project (up to 200 characters).
    #[serde(default)]
    pub affiliation: String,
    /// What they would do with the platform (1 to 2000 characters).
    pub reason: String,
    /// The username they would like.
    pub username: String,
}

/// An application as it went in: the status link's secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessApplied {
    /// The secret of the status link; only its hash is stored. Keep it:
    /// it is the only way to the request's status and, once approved, to
    /// setting the account's password.
    pub token: String,
    /// The status page's path on the platform (`/access/status/<token>`).
    pub status_path: String,
    pub status: AccessRequestStatus,
}

/// Where an access request stands, as its applicant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessRequestStatus {
    pub username: String,
    pub state: insitu_domain::AccessState,
    /// The place in the waiting list while waiting (1 is next).
    pub position: Option<i64>,
    /// The moderator's message, once decided.
    pub message: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    /// Whether the applicant set their account's password (approved only).
    pub password_set: bool,
}

/// An access request as moderators see it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessRequest {
    pub id: String,
    pub name: String,
    pub email: String,
    pub affiliation: String,
    pub reason: String,
    pub username: String,
    pub state: insitu_domain::AccessState,
    /// The place in the waiting list while waiting (1 is next).
    pub position: Option<i64>,
    pub message: Option<String>,
    /// The moderator who decided.
    pub decided_by: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub password_set: bool,
}

/// A moderator's decision, with the message the applicant reads (required
/// for a denial).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDecisionRequest {
    #[serde(default)]
    pub message: String,
}

/// The password an approved applicant chooses for their account.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessPasswordRequest {
    pub password: String,
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
