//! The platform's persistent state. This is the only crate that writes SQL.
//!
//! One [`Store`] serves both backends through sqlx's `Any` driver: SQLite (a
//! file in the data directory, the embedded default) and PostgreSQL (when the
//! database URL says so). Each backend has its own migration directory, run at
//! start. The SQL is kept to the common subset of both (`$n` parameters,
//! `BIGINT` times in Unix seconds, or milliseconds where a column's name
//! says so, 0/1 for booleans, `ON CONFLICT DO NOTHING`), and the same test
//! suite runs against both.
//!
//! The store knows nothing of HTTP, sessions' cookies or password hashing: it
//! keeps records and answers queries over them. Records speak the domain's
//! types (ids, lab states), parsed from their columns; a value that does not
//! parse is `StoreError::Corrupt`, never a panic.

mod access;
mod devlabs;
mod identities;
mod pipelines;
mod quotas;
mod records;
mod shares;
mod store;
mod teams;
mod usage;

pub use access::{AccessDecision, AccessRequestRecord, ApplicationAdmission, NewAccessRequest};
pub use devlabs::{BuildAdmission, BuildRecord, Decision, DevlabRecord, ReleaseRecord};
pub use quotas::{ComputeQuota, QuotaHolder};
pub use records::{
    LabEventRecord, LabRecord, NewUser, PipelineVersionRecord, ProxySessionRecord, RunRecord,
    SessionRecord, TokenRecord, UserRecord,
};
pub use shares::TeamRename;
pub use store::{
    Backend, LabAdmission, LabLimits, LabResource, Store, StoreError, UserUpdate,
    create_postgres_database, redact_url,
};
pub use teams::{MemberChange, TeamChange, TeamMemberRecord};
pub use usage::UsageSample;
