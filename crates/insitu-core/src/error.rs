//! What can go wrong in the platform's services, with the facts in the
//! variants. The text of a variant is written for the user; the web crate
//! turns each variant into a public error code in one place.

use insitu_domain::devlab::SourceError;
use insitu_domain::{DefinitionError, LabId, LabState, Name, NameError, RunId, RunState};
use insitu_launcher::PodmanError;
use insitu_store::StoreError;

use crate::pipelines::Diagnostic;
use crate::volumes::LaunchFileError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a launch passes a compute quota, in the user's words.
fn over_quota(what: insitu_store::LabResource, used: i64, wanted: i64, limit: i64) -> String {
    use insitu_store::LabResource;
    #[allow(clippy::cast_precision_loss)]
    let cores = |m: i64| m as f64 / 1000.0;
    let mib = |b: i64| b >> 20;
    match what {
        LabResource::CpuMillis => format!(
            "your running labs hold {} CPU cores and this one asks for {}; your quota is {}: stop a lab first",
            cores(used),
            cores(wanted),
            cores(limit)
        ),
        LabResource::MemoryBytes => format!(
            "your running labs hold {} MiB of memory and this one asks for {} MiB; your quota is {} MiB: stop a lab first",
            mib(used),
            mib(wanted),
            mib(limit)
        ),
        LabResource::Gpus => format!(
            "your running labs hold {used} GPU(s) and this one asks for {wanted}; your quota is {limit}: stop a lab first"
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no datalab {0:?} in the catalogue")]
    DatalabNotFound(String),
    #[error("no data volume {0:?} in the catalogue")]
    VolumeNotFound(String),
    #[error("unknown query parameter {key:?}: expected q or one of {}", expected.join(", "))]
    InvalidQuery {
        key: String,
        expected: Vec<&'static str>,
    },

    #[error(transparent)]
    InvalidSearch(#[from] insitu_search::RequestError),
    #[error(transparent)]
    SearchIndex(insitu_search::IndexError),

    #[error("you have no lab {0:?}")]
    LabNotFound(String),
    #[error("lab {id} is {state}; only a running lab opens")]
    LabNotRunning { id: LabId, state: LabState },
    #[error("{}", over_quota(*what, *used, *wanted, *limit))]
    ResourceQuotaExceeded {
        what: insitu_store::LabResource,
        used: i64,
        wanted: i64,
        limit: i64,
    },
    #[error("the {0} quota must be a positive number")]
    InvalidComputeQuota(&'static str),
    #[error("a workspace quota must be between {min} and {max} bytes, not {bytes}")]
    InvalidQuota { bytes: u64, min: u64, max: u64 },
    #[error("cannot make the workspace: {0}")]
    WorkspaceDir(std::io::Error),
    #[error("cannot make or mount the workspace's file system: {0}")]
    WorkspaceStorage(String),
    #[error("you already have {active} labs running; the limit is {limit}: stop one first")]
    LabQuotaExceeded { active: usize, limit: usize },
    #[error("{datalab} needs {wanted} GPU(s); this datazone has {total} in all and {free} free")]
    GpuUnavailable {
        datalab: Name,
        wanted: usize,
        total: usize,
        free: usize,
    },
    #[error("{datalab} is a desktop datalab, and this machine lacks {}", missing.join(", "))]
    DatalabNotLaunchable { datalab: Name, missing: Vec<String> },
    #[error(transparent)]
    Placement(#[from] crate::zones::PlacementError),
    #[error(
        "{datalab} takes no secret (launch.credential), and labs in the datazone {zone} are reachable from its cluster's network: it can only run in a zone of this machine"
    )]
    ZoneNeedsCredential { datalab: Name, zone: Name },
    #[error("{datalab} asks for more than a lab may have in the datazone {zone}: {what}")]
    ZoneLimitExceeded {
        datalab: Name,
        zone: Name,
        what: String,
    },
    #[error("the scheduler of the datazone could not be asked: {0}")]
    Scheduler(String),
    #[error("{datalab} opens no files: launch it without one")]
    OpensNoFiles { datalab: Name },
    #[error(transparent)]
    InvalidLaunchFile(#[from] LaunchFileError),
    #[error("the lab proxy is not attached yet")]
    NoLabProxy,

    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("this account has been disabled")]
    AccountDisabled,
    #[error("the account no longer exists")]
    AccountGone,
    #[error(
        "no account is linked to your {provider} identity, and accounts are not created on first login: ask an administrator to create or link one"
    )]
    ProviderNotLinked { provider: String },
    #[error(
        "{provider} has not verified your e-mail address, so it cannot link you to the account that has it: verify it with {provider} first"
    )]
    ProviderEmailUnverified { provider: String },
    #[error(
        "a usage series needs from < to and a step > 0 of at most {max_steps} steps (from {from}, to {to}, step {step} s)"
    )]
    InvalidUsageRange {
        from: i64,
        to: i64,
        step: i64,
        max_steps: i64,
    },
    #[error("{0:?} is not an e-mail address")]
    InvalidEmail(String),
    #[error("the e-mail address {0} is another account's")]
    EmailTaken(String),
    #[error("too many failed logins; try again in {retry_in_secs} s")]
    RateLimited { retry_in_secs: i64 },
    #[error("too many passwords are being checked right now; try again in a moment")]
    PasswordChecksBusy,
    #[error("{0}")]
    WeakPassword(PasswordRule),
    #[error("username {username:?} {reason}")]
    InvalidUsername { username: String, reason: NameError },
    #[error("the username {0} is taken")]
    UsernameTaken(String),
    #[error("no user {0:?}")]
    UserNotFound(String),
    #[error("this is the last active administrator")]
    LastAdmin,
    #[error("the token name must be 1 to 64 characters")]
    TokenName,
    #[error("expires_in_days must be between 1 and 3650")]
    TokenExpiry,
    #[error("you have no live token with this id")]
    TokenNotFound,

    #[error("the application is not valid: {0}")]
    InvalidApplication(insitu_domain::ApplicationError),
    #[error("the message is not valid: {0}")]
    InvalidAccessMessage(insitu_domain::ApplicationError),
    #[error(
        "too many applications or unknown status links from here; try again in {retry_in_secs} s"
    )]
    AccessRateLimited { retry_in_secs: i64 },
    #[error("the platform takes no applications at present")]
    ApplicationsClosed,
    #[error("the username {0} is taken, or another applicant asked for it")]
    UsernameClaimed(String),
    #[error("an application with this e-mail address is waiting already: follow its status link")]
    AlreadyApplied,
    #[error("the waiting list is full ({max} applications); try again later")]
    WaitingListFull { max: i64 },
    #[error("no such access request")]
    AccessRequestNotFound,
    #[error("the access request was {0} already")]
    AccessRequestDecided(insitu_domain::AccessState),
    #[error(
        "the platform holds {accounts} accounts, its admission cap of {cap}: the applicant waits"
    )]
    AdmissionCapReached { accounts: i64, cap: i64 },
    #[error("the access request is {0}: only an approved applicant sets a password")]
    AccessNotApproved(insitu_domain::AccessState),
    #[error("the password was set already: log in, or ask an administrator to reset it")]
    AccessPasswordSet,

    #[error("you are in no team {0:?}")]
    TeamNotFound(String),
    #[error("team name {name:?} {reason}")]
    InvalidTeamName { name: String, reason: NameError },
    #[error("the team name {0} is taken")]
    TeamNameTaken(String),
    #[error("only an owner of team {0} may do this")]
    NotTeamOwner(String),
    #[error("you cannot invite yourself")]
    InviteYourself,
    #[error("user {0} is disabled")]
    UserDisabled(String),
    #[error("{username} is already in team {team} (or invited)")]
    AlreadyInTeam { username: String, team: String },
    #[error("{username} is not in team {team}")]
    NotInTeam { username: String, team: String },
    #[error("this would leave team {0} without an owner: make another member an owner first")]
    LastOwner(String),
    #[error("a lab is not shared with its owner")]
    ShareWithYourself,
    #[error("the lab is not shared with {0}")]
    ShareNotFound(String),
    #[error("cannot make the team workspace: {0}")]
    TeamWorkspace(std::io::Error),
    #[error("no pipeline {0:?} that you can see")]
    PipelineNotFound(String),
    #[error("pipeline {pipeline} has no version {version:?}")]
    PipelineVersionNotFound { pipeline: String, version: String },
    #[error("the pipeline's details are wrong: {}", list(.0))]
    InvalidPipeline(Vec<DefinitionError>),
    #[error("the CWL is not valid: {}", list(.0))]
    InvalidCwl(Vec<Diagnostic>),
    #[error(
        "pipeline {pipeline} already has a version {version}; versions never change: give the new one another number"
    )]
    PipelineVersionExists { pipeline: String, version: String },
    #[error("{0}")]
    InvalidJob(String),
    #[error("you have no run {0:?}")]
    RunNotFound(String),
    #[error(
        "you already have {queued} runs waiting; the limit is {limit}: wait for some to start, or cancel some"
    )]
    RunQueueFull { queued: usize, limit: usize },
    #[error("run {id} is {state}; only a failed or cancelled run resumes")]
    RunNotResumable { id: RunId, state: RunState },
    #[error("run {id} is {state}: {what} once it has ended")]
    RunNotEnded {
        id: RunId,
        state: RunState,
        what: &'static str,
    },
    #[error("run {id} has no {what}")]
    RunHasNo { id: RunId, what: &'static str },
    #[error(
        "no CWL engine is installed (pipelines.engine): pipelines can be neither checked nor run"
    )]
    NoEngine,
    #[error("the CWL engine failed: {0}")]
    EngineFailed(String),
    #[error("you have no datalab {0:?} in development")]
    DevlabNotFound(String),
    #[error("only its developer may change datalab {0}")]
    NotDevlabOwner(Name),
    #[error("the name {0} is taken: choose another for your datalab")]
    DevlabExists(String),
    #[error("datalab name {name:?} {reason}")]
    InvalidDevlabName { name: String, reason: NameError },
    #[error("{}", list(.0))]
    InvalidDefinition(Vec<DefinitionError>),
    #[error("licence {given:?} is not one of the offered licences: {}", offered.join(", "))]
    InvalidLicense {
        given: String,
        offered: Vec<&'static str>,
    },
    #[error("{}", list(.0))]
    InvalidSource(Vec<SourceError>),
    #[error("{0}")]
    InvalidTemplate(String),
    #[error("build {number} of {datalab} has not ended yet: wait for it")]
    BuildRunning { datalab: Name, number: i64 },
    #[error("{datalab} has no build {number}")]
    BuildNotFound { datalab: String, number: i64 },
    #[error("build {number} of {datalab} is {state}: only a successful build can be {action}")]
    BuildNotReady {
        datalab: Name,
        number: i64,
        state: insitu_domain::BuildState,
        action: &'static str,
    },
    #[error("the image of build {number} of {datalab} was removed to save space; build again")]
    ImageRemoved { datalab: Name, number: i64 },
    #[error("build {number} of {datalab} was submitted already")]
    AlreadySubmitted { datalab: Name, number: i64 },
    #[error(
        "version {version} of {datalab} is published already: raise the version and build again"
    )]
    VersionPublished { datalab: Name, version: String },
    #[error("build {number} of {datalab} is not waiting for a decision")]
    NotPending { datalab: String, number: i64 },
    #[error("a moderator does not review their own datalab")]
    OwnSubmission,
    #[error("say why the datalab is refused: its developer reads the reason")]
    ReasonRequired,
    #[error("say why: the user whose lab or run it is reads the reason")]
    StopReasonRequired,
    #[error("{datalab} has no version {version} you may launch")]
    VersionNotFound { datalab: String, version: String },
    #[error("no user {}", .0.join(", "))]
    UnknownUsers(Vec<String>),
    #[error("this is not an exported Insitu datalab: {0}")]
    InvalidImport(String),
    #[error("the upload is larger than {max} bytes, the most an import takes")]
    ImportTooLarge { max: u64 },
    #[error("podman: {0}")]
    Podman(#[from] PodmanError),
    #[error("a file of the platform: {0}")]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing a password: {0}")]
    PasswordHash(argon2::password_hash::Error),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("a lock was poisoned by a panic")]
    Poisoned,
}

impl Error {
    /// Whether the database cannot be reached right now (worth a retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_unavailable())
    }
}

/// Problems one after the other.
fn list<T: std::fmt::Display>(problems: &[T]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// The password policy rule a new password breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    #[error("the password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("the password must not be the username")]
    NotTheUsername,
}
