//! The platform's records as the API sends them (and the pages show them).

use insitu_api::{
    ApiToken, Build, Datalab, DatalabResources, DatalabTags, DevelopedDatalab, Devlab, Lab,
    LabConnection, LabEvent, LabSharing, LaunchStep, Me, Release, Submission, Team, TeamMember,
    User, Volume,
};
use insitu_core::catalogue::Catalogue;
use insitu_core::devlabs::{DevlabView, Submission as PendingSubmission};
use insitu_core::labs::{Step, describe_event};
use insitu_core::teams::{TeamView, Teams};
use insitu_core::volumes::VolumeEntry;
use insitu_core::{BuildRecord, ReleaseRecord};
use insitu_core::{LabEventRecord, LabRecord, TokenRecord, UserRecord};
use insitu_domain::DatalabSpec;
use insitu_domain::devlab::build_version;

use crate::time_fmt::rfc3339;

/// A user's compute quota and use.
pub fn compute_quota(c: &insitu_core::ComputeUse) -> insitu_api::ComputeQuota {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let bytes = |n: i64| u64::try_from(n).unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let cores = |m: i64| m as f64 / 1000.0;
    insitu_api::ComputeQuota {
        labs: count(c.limits.labs),
        labs_used: count(c.labs),
        cpu: c.limits.cpu_millis.map(cores),
        cpu_used: cores(c.cpu_millis),
        memory_bytes: c.limits.memory_bytes.map(bytes),
        memory_used_bytes: bytes(c.memory_bytes),
        gpus: c.limits.gpus.map(bytes),
        gpus_used: count(c.gpus),
        set: c.set,
    }
}

/// A workspace's quota and use.
pub fn workspace_quota(u: &insitu_core::workspaces::WorkspaceUsage) -> insitu_api::WorkspaceQuota {
    insitu_api::WorkspaceQuota {
        quota_bytes: u.quota_bytes,
        quota_set: u.quota_set,
        used_bytes: u.used_bytes,
        files: u.files,
        capacity_bytes: u.capacity_bytes,
        used_percent: u.used_percent(),
        full: u.full(),
        warning: u.warning(),
        enforced: u.enforced,
        not_enforced: u.not_enforced.clone(),
        pending: u.pending.clone(),
    }
}

/// An asset the discovery portal found.
pub fn search_hit(h: &insitu_search::Hit) -> insitu_api::SearchHit {
    let a = &h.asset;
    let centre = a.shape.as_ref().map(|s| s.centre);
    insitu_api::SearchHit {
        id: a.id(),
        kind: a.kind().as_str().to_owned(),
        name: a.name.clone(),
        title: a.title.clone(),
        description: a.description.clone(),
        volume: a.volume.clone(),
        file: a.file.clone(),
        properties: a.properties.clone(),
        domain: a.domain.clone(),
        mission: a.mission.clone(),
        instrument: a.instrument.clone(),
        filter: a.filter.clone(),
        telescope: a.telescope.clone(),
        object: a.object.clone(),
        date_obs: a.date_obs.clone(),
        exptime: a.exptime,
        ra: centre.map(|c| c.ra),
        dec: centre.map(|c| c.dec),
        extent_deg: a.shape.as_ref().map(insitu_search::Shape::bounding_radius),
        distance_deg: h.distance,
        image: a.image.clone(),
        columns: a.columns.clone(),
        rows: a.rows,
        size_bytes: a.size_bytes,
        datalab_kind: a.datalab_kind.clone(),
        opens_files: a.opens_files,
    }
}

/// A page of discovery results.
pub fn search_response(r: &insitu_search::SearchResults) -> insitu_api::SearchResponse {
    insitu_api::SearchResponse {
        total: r.total,
        items: r.hits.iter().map(search_hit).collect(),
        facets: r
            .facets
            .iter()
            .map(|(f, counts)| {
                let list = counts
                    .iter()
                    .map(|(value, n)| insitu_api::FacetCount {
                        value: value.clone(),
                        count: usize::try_from(*n).unwrap_or(usize::MAX),
                    })
                    .collect();
                (f.as_str().to_owned(), list)
            })
            .collect(),
    }
}

/// The harvest's progress.
pub fn harvest(p: &insitu_search::HarvestProgress) -> insitu_api::HarvestStatus {
    let at = |t: Option<i64>| t.map(rfc3339);
    insitu_api::HarvestStatus {
        running: p.running,
        started_at: at(p.started_at),
        finished_at: at(p.finished_at),
        volume: p.volume.clone(),
        files_seen: p.files_seen,
        files_read: p.files_read,
        files_indexed: p.files_indexed,
        files_unchanged: p.files_unchanged,
        files_removed: p.files_removed,
        problems: p
            .problems
            .iter()
            .map(|x| insitu_api::HarvestProblem {
                volume: x.volume.clone(),
                file: x.file.clone(),
                reason: x.reason.clone(),
            })
            .collect(),
        problem_count: p.problem_count,
    }
}

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
        zone: l.zone.to_string(),
        reason: l.reason.clone(),
        progress: progress
            .into_iter()
            .map(|st| LaunchStep {
                step: st.step.to_owned(),
                at_ms: u64::try_from(st.at_ms).unwrap_or(u64::MAX),
                detail: st.detail,
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
        developed: None,
    }
}

/// A datalab as `cat` shows it, with what the catalogue knows of a
/// developed one (`starred`: the datalabs the caller starred).
pub fn datalab_in(cat: &Catalogue, d: &DatalabSpec, starred: &[String]) -> Datalab {
    let mut out = datalab(d);
    out.developed = cat
        .developed
        .get(d.name.as_str())
        .map(|info| DevelopedDatalab {
            owner: info.owner.to_string(),
            author: info.author.clone(),
            state: info.state.to_owned(),
            modified_at: rfc3339(info.modified_at),
            stars: info.stars,
            launches: info.launches,
            versions: info.versions.clone(),
            starred: starred.iter().any(|s| s == d.name.as_str()),
        });
    out
}

pub fn build(b: &BuildRecord, release: Option<&ReleaseRecord>) -> Build {
    Build {
        datalab: b.devlab.to_string(),
        number: b.number,
        build_version: build_version(&b.version, b.number),
        version: b.version.clone(),
        state: b.state,
        image: b.image.clone(),
        error: b.error.clone(),
        image_kept: b.image_kept,
        imported: b.imported,
        publication: release.map(|r| r.state),
        created_at: rfc3339(b.created_at),
        started_at: b.started_at.map(rfc3339),
        finished_at: b.finished_at.map(rfc3339),
        duration_secs: b.started_at.zip(b.finished_at).map(|(s, f)| f - s),
    }
}

pub fn release(r: &ReleaseRecord) -> Release {
    Release {
        datalab: r.devlab.to_string(),
        build: r.number,
        version: r.version.clone(),
        state: r.state,
        reason: r.reason.clone(),
        submitted_by: r.submitted_by.to_string(),
        submitted_at: rfc3339(r.submitted_at),
        decided_by: r.decided_by.as_ref().map(ToString::to_string),
        decided_at: r.decided_at.map(rfc3339),
    }
}

pub fn devlab(v: &DevlabView) -> Devlab {
    let d = &v.record;
    Devlab {
        name: d.name.to_string(),
        owner: d.owner.to_string(),
        template: d.template.to_string(),
        state: v.state().to_owned(),
        definition: d.definition.clone(),
        source: d.source.clone(),
        public: d.public,
        shared_with: d.shared_with.iter().map(ToString::to_string).collect(),
        created_at: rfc3339(d.created_at),
        updated_at: rfc3339(d.updated_at),
        stars: v.stars,
        launches: v.launches,
        builds: v
            .builds
            .iter()
            .map(|b| build(b, v.release_of(b.number)))
            .collect(),
        releases: v.releases.iter().map(release).collect(),
    }
}

pub fn submission(s: &PendingSubmission) -> Submission {
    Submission {
        release: release(&s.release),
        owner: s.owner.to_string(),
        build_version: build_version(&s.build.version, s.build.number),
        definition: s.build.definition.clone(),
        source: s.build.source.clone(),
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

pub fn team(t: &TeamView) -> Team {
    Team {
        name: t.name.to_string(),
        role: t.me.role,
        accepted: t.me.accepted,
        workspace_path: Teams::lab_path(&t.name),
        members: t
            .members
            .iter()
            .map(|m| TeamMember {
                username: m.username.to_string(),
                role: m.role,
                accepted: m.accepted,
            })
            .collect(),
    }
}

pub fn lab_sharing(s: insitu_core::labs::share::Sharing) -> LabSharing {
    LabSharing {
        shared_with: s.shared_with.iter().map(ToString::to_string).collect(),
        teams: s.teams.iter().map(ToString::to_string).collect(),
        connected: s
            .connected
            .into_iter()
            .map(|(username, c)| LabConnection {
                username,
                sessions: c.sessions,
                websockets: c.websockets,
            })
            .collect(),
    }
}

pub fn access_status(
    s: &insitu_core::access_requests::AccessStatus,
) -> insitu_api::AccessRequestStatus {
    let r = &s.request;
    insitu_api::AccessRequestStatus {
        username: r.username.to_string(),
        state: r.state,
        position: s.position,
        message: r.message.clone(),
        created_at: rfc3339(r.created_at),
        decided_at: r.decided_at.map(rfc3339),
        password_set: r.password_set_at.is_some(),
    }
}

pub fn access_request(s: &insitu_core::access_requests::AccessStatus) -> insitu_api::AccessRequest {
    let r = &s.request;
    insitu_api::AccessRequest {
        id: r.id.to_string(),
        name: r.name.clone(),
        email: r.email.clone(),
        affiliation: r.affiliation.clone(),
        reason: r.reason.clone(),
        username: r.username.to_string(),
        state: r.state,
        position: s.position,
        message: r.message.clone(),
        decided_by: r.decided_by.as_ref().map(ToString::to_string),
        created_at: rfc3339(r.created_at),
        decided_at: r.decided_at.map(rfc3339),
        password_set: r.password_set_at.is_some(),
    }
}

/// The status page's path of a status link's secret.
pub fn access_status_path(token: &str) -> String {
    format!("/access/status/{token}")
}

fn zone_resources(r: &insitu_domain::ZoneResources) -> insitu_api::ZoneResources {
    insitu_api::ZoneResources {
        cpu: r.cpu,
        memory_bytes: r.memory_bytes,
        gpu: r.gpu,
    }
}

/// A datazone as the caller sees it.
pub fn zone(z: &insitu_core::zones::ZoneView, default: &insitu_domain::Name) -> insitu_api::Zone {
    insitu_api::Zone {
        name: z.spec.name.to_string(),
        title: z.spec.title.clone(),
        kind: z.spec.kind.to_string(),
        volumes: z.volumes.iter().map(ToString::to_string).collect(),
        capacity: zone_resources(&z.capacity),
        free: zone_resources(&z.free),
        limits: zone_resources(&z.spec.limits),
        unavailable: z.unavailable.clone(),
        default: z.spec.name == *default,
    }
}
