//! The platform's records as the API sends them (and the pages show them).

use insitu_api::{
    ApiToken, Datalab, DatalabResources, DatalabTags, Lab, LabEvent, LaunchStep, Me, User, Volume,
};
use insitu_core::labs::{Step, describe_event};
use insitu_core::volumes::VolumeEntry;
use insitu_core::{LabEventRecord, LabRecord, TokenRecord, UserRecord};
use insitu_domain::DatalabSpec;

use crate::time_fmt::rfc3339;

pub fn me(u: &UserRecord) -> Me {
    Me {
        username: u.username.to_string(),
        role: u.role,
        created_at: rfc3339(u.created_at),
    }
}

pub fn user(u: &UserRecord) -> User {
    User {
        username: u.username.to_string(),
        role: u.role,
        disabled: u.disabled,
        created_at: rfc3339(u.created_at),
        last_login_at: u.last_login_at.map(rfc3339),
    }
}

pub fn token(t: &TokenRecord) -> ApiToken {
    ApiToken {
        id: t.id.to_string(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
        expires_at: t.expires_at.map(rfc3339),
    }
}

/// A lab with its launch progress (see `Labs::progress`) and its events.
pub fn lab(l: &LabRecord, progress: Vec<Step>, events: &[LabEventRecord]) -> Lab {
    Lab {
        id: l.id.to_string(),
        datalab: l.datalab.clone(),
        volumes: l.volumes.clone(),
        file: l.file.clone(),
        state: l.state.to_string(),
        reason: l.reason.clone(),
        progress: progress
            .into_iter()
            .map(|st| LaunchStep {
                step: st.step.to_owned(),
                at_ms: u64::try_from(st.at_ms).unwrap_or(u64::MAX),
            })
            .collect(),
        created_at: rfc3339(l.created_at),
        started_at: l.started_at.map(rfc3339),
        stopped_at: l.stopped_at.map(rfc3339),
        events: events.iter().map(lab_event).collect(),
    }
}

pub fn lab_event(e: &LabEventRecord) -> LabEvent {
    LabEvent {
        kind: e.kind.to_string(),
        at: rfc3339(e.at),
        message: describe_event(e),
        pid: e.pid.and_then(|p| u32::try_from(p).ok()),
        command: e.command.clone(),
        memory_limit_bytes: e.memory_limit.and_then(|m| u64::try_from(m).ok()),
        tool: e.tool,
    }
}

pub fn datalab(d: &DatalabSpec) -> Datalab {
    Datalab {
        name: d.name.to_string(),
        title: d.title.clone(),
        description: d.description.clone(),
        version: d.version.clone(),
        kind: d.kind,
        license: d.license.clone(),
        resources: DatalabResources {
            cpu: d.resources.cpu,
            memory_bytes: d.resources.memory_bytes,
            gpu: d.resources.gpu,
        },
        tags: DatalabTags {
            domain: d.tags.domain.clone(),
            mission: d.tags.mission.clone(),
            properties: d.tags.properties.clone(),
        },
        opens_files: d.launch.opens_files(),
    }
}

pub fn volume(v: &VolumeEntry, in_my_volumes: bool) -> Volume {
    Volume {
        name: v.spec.name.to_string(),
        title: v.spec.title.clone(),
        description: v.spec.description.clone(),
        mount_path: v.spec.mount_path.display().to_string(),
        zone: v.spec.zone.to_string(),
        metadata: v.spec.metadata.clone(),
        file_count: v.file_count,
        size_bytes: v.size_bytes,
        in_my_volumes,
    }
}
