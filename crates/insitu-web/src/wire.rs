//! The platform's records as the API sends them (and the pages show them).

use insitu_api::{Datalab, DatalabResources, DatalabTags, Volume};
use insitu_core::volumes::VolumeEntry;
use insitu_domain::DatalabSpec;

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
