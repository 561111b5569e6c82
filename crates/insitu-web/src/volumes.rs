//! The data volume catalogue: volumes defined in the configuration, with
//! their size counted once at start.

use std::path::Path;

use insitu_api::Volume;
use insitu_domain::VolumeSpec;
use insitu_domain::volume::VolumeConfig;

use crate::query::Searchable;

pub const VOLUME_FACETS: [&str; 4] = ["domain", "mission", "instrument", "zone"];

#[derive(Debug, Clone)]
pub struct VolumeEntry {
    pub spec: VolumeSpec,
    pub file_count: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct VolumeCatalogue {
    /// Sorted by name.
    pub volumes: Vec<VolumeEntry>,
}

impl VolumeCatalogue {
    /// Validates the configured volumes; an invalid one stops the start,
    /// since the operator wrote it in the configuration.
    pub fn from_config(configs: &[VolumeConfig]) -> anyhow::Result<VolumeCatalogue> {
        let mut volumes = Vec::new();
        for c in configs {
            let spec = VolumeSpec::from_config(c.clone()).map_err(|errs| {
                let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
                anyhow::anyhow!(
                    "data volume {:?} in the configuration: {}",
                    c.name,
                    list.join("; ")
                )
            })?;
            if volumes
                .iter()
                .any(|v: &VolumeEntry| v.spec.name == spec.name)
            {
                anyhow::bail!("data volume {:?} is defined twice", c.name);
            }
            let (file_count, size_bytes) = count_files(&spec.source);
            if !spec.source.is_dir() {
                tracing::warn!(volume = %spec.name, source = %spec.source.display(), "data volume source is not a directory");
            }
            volumes.push(VolumeEntry {
                spec,
                file_count,
                size_bytes,
            });
        }
        volumes.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(VolumeCatalogue { volumes })
    }

    pub fn get(&self, name: &str) -> Option<&VolumeEntry> {
        self.volumes
            .binary_search_by(|v| v.spec.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.volumes[i])
    }
}

/// Files and bytes below `dir`, not following symbolic links.
pub fn count_files(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

impl Searchable for VolumeEntry {
    fn text(&self) -> String {
        self.spec.search_text()
    }

    fn facet_values(&self, facet: &str) -> Vec<String> {
        let m = &self.spec.metadata;
        match facet {
            "domain" => m.domain.clone(),
            "mission" => m.mission.clone(),
            "instrument" => m.instrument.clone(),
            "zone" => vec![self.spec.zone.to_string()],
            _ => Vec::new(),
        }
    }
}

pub fn to_wire(v: &VolumeEntry, in_my_volumes: bool) -> Volume {
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
