//! Rows as the rest of the platform sees them.

use std::collections::BTreeMap;

use insitu_domain::{
    LabEventKind, LabId, LabState, Name, PipelineVersion, Role, RunId, RunState, TokenId, UserId,
    Username,
};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    pub now: i64,
}

/// A browser session; the cookie's value is never stored, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// A personal API token; only its hash is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub token_hash: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One launch of a datalab.
#[derive(Debug, Clone, PartialEq)]
pub struct LabRecord {
    pub id: LabId,
    pub user_id: UserId,
    pub datalab: String,
    /// Names of the data volumes mounted, comma-separated in the table.
    pub volumes: Vec<String>,
    /// GPU devices assigned (by index), comma-separated in the table.
    pub gpus: Vec<String>,
    /// The file the lab was launched on, as the lab sees it.
    pub file: Option<String>,
    /// Stored as the state's name (pending, starting, running, stopping,
    /// unknown, stopped, failed).
    pub state: LabState,
    pub reason: Option<String>,
    pub port: Option<i64>,
    pub pid: Option<i64>,
    pub pid_start: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    /// What its datalab asked for at launch: thousandths of a core, and
    /// bytes of memory (0: none set).
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    /// The datazone it runs in (`local` for this machine).
    pub zone: Name,
    /// Its Slurm job id, for a lab in a Slurm zone once submitted.
    pub job: Option<String>,
    /// The address of the node it runs on (a Slurm lab), where the proxy
    /// reaches its port; `None`: this machine's loopback.
    pub host: Option<String>,
}

/// Something that happened to a lab while it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct LabEventRecord {
    pub lab_id: LabId,
    /// Unix seconds.
    pub at: i64,
    pub kind: LabEventKind,
    /// The process concerned, as the host numbers it.
    pub pid: Option<i64>,
    /// Its command name, as the kernel names it.
    pub command: Option<String>,
    /// The lab's memory limit in bytes, for a memory kill.
    pub memory_limit: Option<i64>,
    /// Whether the process was the lab's tool itself (the lab then ended).
    pub tool: bool,
}

/// A lab proxy session; the cookie's secret is never stored, only its
/// SHA-256 (`digest`, 64 hex digits).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySessionRecord {
    pub digest: String,
    pub lab_id: LabId,
    pub user_id: UserId,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
}

/// One version of a pipeline kept in the database: a user's own, or one
/// pushed to the system catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineVersionRecord {
    /// The user it belongs to; `None` for the system catalogue.
    pub owner: Option<UserId>,
    pub name: Name,
    pub version: PipelineVersion,
    pub description: String,
    pub keywords: Vec<String>,
    pub author: String,
    pub licence: String,
    /// The file holding the process to run.
    pub main: String,
    /// Every file of the version: name and text.
    pub files: BTreeMap<String, String>,
    /// Who pushed it (the owner, or the developer who pushed it to the
    /// system catalogue).
    pub pushed_by: UserId,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// One run of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub user_id: UserId,
    /// The pipeline, as a reference (`name` or `owner/name`).
    pub pipeline: String,
    pub version: String,
    /// Stored as the state's name.
    pub state: RunState,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// What the user should know that is not a failure (it was resumed
    /// after a restart of the platform, say).
    pub notice: Option<String>,
    /// The job order as the user gave it (JSON).
    pub job: String,
    /// The run whose finished steps this one reuses.
    pub resumed_from: Option<RunId>,
    /// The first run of its chain of resumes.
    pub lineage: RunId,
    pub pid: Option<i64>,
    pub pid_start: Option<i64>,
    /// The output object as the user sees it (JSON), once it succeeded.
    pub outputs: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// When its intermediate files were removed.
    pub cleaned_at_ms: Option<i64>,
    /// The datazone it executes in (`local` for this machine).
    pub zone: Name,
}
