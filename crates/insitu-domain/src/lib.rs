//! The platform's vocabulary as pure types and rules: validated names and
//! ids, roles (of users and in teams), who may see what (audiences), secrets
//! that never print, the lab state machine, datalab definitions,
//! user-developed datalabs (templates, Containerfile rules, build and
//! publication states), data volume definitions, pipelines (references,
//! versions, details) and the run state machine, and SPDX licence checks.
//!
//! This crate does no I/O and depends on nothing else of ours: every other
//! crate (store, web, launchers, CLI) speaks in these types. Values are parsed
//! once at the edge (`FromStr`, `parse_*`) and trusted afterwards.

pub mod access;
pub mod audience;
pub mod datalab;
pub mod devlab;
pub mod id;
pub mod lab;
pub mod name;
pub mod pipeline;
pub mod role;
pub mod secret;
pub mod spdx;
pub mod team;
pub mod volume;
pub mod zone;

pub use access::{AccessState, Application, ApplicationError, UnknownAccessState};
pub use audience::{Audience, Grant, GrantError, Viewer};
pub use datalab::{
    DatalabKind, DatalabSpec, DefinitionError, LaunchSpec, Launcher, Property, Resources, Tags,
    ToolCredential,
};
pub use devlab::{BuildState, DevlabDefinition, DevlabSource, ReleaseState, Template};
pub use id::{AccessRequestId, IdError, LabId, RunId, TokenId, UserId};
pub use lab::{LabEventKind, LabState, UnknownLabEvent, UnknownLabState};
pub use name::{Name, NameError, Username};
pub use pipeline::{
    PipelineMeta, PipelineOwner, PipelineRef, PipelineVersion, RawPipelineMeta, RunState,
};
pub use role::Role;
pub use secret::Secret;
pub use team::{TeamRole, UnknownTeamRole};
pub use volume::{VolumeMetadata, VolumeSpec};
pub use zone::{LOCAL_ZONE, SlurmTarget, ZoneKind, ZoneResources, ZoneSpec};
