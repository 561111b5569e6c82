//! The embedded default with demo data: generates the demo data volumes
//! (small but real FITS files) once, and offers them in the catalogue.

use std::path::{Path, PathBuf};

use insitu_domain::volume::{VolumeConfig, VolumeMetadata};

/// Creates the demo volumes below `root` unless they exist, and returns
/// their configuration.
pub fn demo_volumes(root: &Path) -> anyhow::Result<Vec<VolumeConfig>> {
    std::fs::create_dir_all(root)?;
    let root = std::fs::canonicalize(root)?;
    let generated = insitu_fits::generate_demo_volumes(&root)?;
    Ok(generated
        .into_iter()
        .map(|v| {
            let get = |k: &str| {
                v.metadata
                    .get(k)
                    .cloned()
                    .into_iter()
                    .collect::<Vec<String>>()
            };
            VolumeConfig {
                name: v.name.clone(),
                title: v.title,
                description: v.description,
                source: absolute(&root, &v.path),
                mount_path: None,
                zone: None,
                metadata: VolumeMetadata {
                    domain: get("domain"),
                    mission: get("mission"),
                    instrument: get("instrument"),
                },
                visible_to: None,
            }
        })
        .collect())
}

fn absolute(root: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}
