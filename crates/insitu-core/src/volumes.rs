//! The data volume catalogue: volumes defined in the configuration, with
//! their size counted once at start; and each user's own list of volumes
//! ("my volumes"). A volume restricted in the configuration (`visible_to`)
//! exists only for those its audience admits: for anyone else it is not
//! listed, not found by name, not addable and not mountable.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use insitu_domain::volume::VolumeConfig;
use insitu_domain::{Name, UserId, Viewer, VolumeSpec};

use insitu_store::Store;

use crate::clock::now;
use crate::config::ConfigError;
use crate::error::Error;
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
    pub fn from_config(configs: &[VolumeConfig]) -> Result<VolumeCatalogue, ConfigError> {
        let mut volumes = Vec::new();
        for c in configs {
            let spec =
                VolumeSpec::from_config(c.clone()).map_err(|problems| ConfigError::Volume {
                    name: c.name.clone(),
                    problems,
                })?;
            if volumes
                .iter()
                .any(|v: &VolumeEntry| v.spec.name == spec.name)
            {
                return Err(ConfigError::VolumeTwice(c.name.clone()));
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

/// The volume catalogue and every user's volumes.
pub struct Volumes {
    catalogue: VolumeCatalogue,
    store: Store,
    /// Each user's volume names, read through on first use and replaced on
    /// every change made through this server.
    mine: RwLock<HashMap<UserId, Arc<Vec<String>>>>,
}

impl Volumes {
    pub fn new(catalogue: VolumeCatalogue, store: Store) -> Volumes {
        Volumes {
            catalogue,
            store,
            mine: RwLock::new(HashMap::new()),
        }
    }

    /// Every volume, sorted by name, whoever may see it (for the platform's
    /// own work; what users see goes through [`Volumes::visible`]).
    pub fn all(&self) -> &[VolumeEntry] {
        &self.catalogue.volumes
    }

    /// The volumes the viewer may see, sorted by name.
    pub fn visible(&self, viewer: &Viewer) -> Vec<VolumeEntry> {
        self.catalogue
            .volumes
            .iter()
            .filter(|v| v.spec.audience.admits(viewer))
            .cloned()
            .collect()
    }

    /// The volume of this name if the viewer may see it; otherwise the
    /// same answer as for a volume that does not exist.
    pub fn volume_for(&self, viewer: &Viewer, name: &str) -> Result<&VolumeEntry, Error> {
        self.get(name)
            .filter(|v| v.spec.audience.admits(viewer))
            .ok_or_else(|| Error::VolumeNotFound(name.to_owned()))
    }

    pub fn get(&self, name: &str) -> Option<&VolumeEntry> {
        self.catalogue.get(name)
    }

    /// The volume of this name, or why there is none.
    pub fn volume(&self, name: &str) -> Result<&VolumeEntry, Error> {
        self.get(name)
            .ok_or_else(|| Error::VolumeNotFound(name.to_owned()))
    }

    /// The names of a user's volumes.
    pub async fn mine(&self, user_id: &UserId) -> Result<Arc<Vec<String>>, Error> {
        if let Some(v) = self.mine.read().ok().and_then(|m| m.get(user_id).cloned()) {
            return Ok(v);
        }
        let fresh = Arc::new(self.store.my_volumes(user_id).await?);
        if let Ok(mut m) = self.mine.write() {
            m.insert(user_id.clone(), Arc::clone(&fresh));
        }
        Ok(fresh)
    }

    /// Adds a catalogued volume the viewer may see to the user's volumes
    /// (again is no change).
    pub async fn add_mine(
        &self,
        user_id: &UserId,
        viewer: &Viewer,
        name: &str,
    ) -> Result<&VolumeEntry, Error> {
        let v = self.volume_for(viewer, name)?;
        self.store.add_my_volume(user_id, name, now()).await?;
        self.forget_mine(user_id);
        Ok(v)
    }

    /// Removes a volume from the user's volumes (when absent, no change).
    /// A volume the viewer may not see answers as one that does not exist,
    /// unless it is among their volumes already (added before they lost
    /// sight of it): then it goes.
    pub async fn remove_mine(
        &self,
        user_id: &UserId,
        viewer: &Viewer,
        name: &str,
    ) -> Result<(), Error> {
        if self.volume_for(viewer, name).is_err() {
            self.volume(name)?;
            if !self.mine(user_id).await?.iter().any(|n| n == name) {
                return Err(Error::VolumeNotFound(name.to_owned()));
            }
        }
        self.store.remove_my_volume(user_id, name).await?;
        self.forget_mine(user_id);
        Ok(())
    }

    fn forget_mine(&self, user_id: &UserId) {
        if let Ok(mut m) = self.mine.write() {
            m.remove(user_id);
        }
    }
}

/// Why a lab cannot be launched on a file; the text is for the user.
#[derive(Debug, thiserror::Error)]
pub enum LaunchFileError {
    #[error(
        "the file to open must be an absolute path inside a volume's mount path, such as /media/data/<volume>/<file>; {0:?} is not absolute"
    )]
    NotAbsolute(String),
    #[error("the file to open, {0:?}, must be a plain path: no empty, '.' or '..' components")]
    NotPlain(String),
    #[error(
        "{file} is in the volume {volume}, which is not among the volumes to mount: select it too"
    )]
    VolumeNotSelected { file: String, volume: Name },
    #[error("{0} is not inside a volume to mount: no volume is selected")]
    NoVolumeSelected(String),
    #[error("{file} is not inside the mount path of a volume to mount ({})", mounts.join(", "))]
    OutsideMounts { file: String, mounts: Vec<String> },
    #[error("there is no file {file} in the volume {volume}")]
    Missing { file: String, volume: Name },
    #[error("{file} leads outside the volume {volume} (a symbolic link)")]
    Escapes { file: String, volume: Name },
    #[error("{0} is not a file (a folder?)")]
    NotAFile(String),
}

/// Checks `file`, a file a lab is to be launched on, against the volumes
/// the lab will mount (`selected`; `all` is the catalogue, to name a volume
/// the user forgot to select) and returns its path as the lab will see it.
/// The path must be absolute, plain (no empty, `.` or `..` components) and
/// inside one selected volume's mount path; the file must exist in that
/// volume's source directory and, symbolic links resolved, stay inside it.
pub fn resolve_launch_file(
    selected: &[VolumeSpec],
    all: &[VolumeEntry],
    file: &str,
) -> Result<String, LaunchFileError> {
    let path = Path::new(file);
    if !file.starts_with('/') {
        return Err(LaunchFileError::NotAbsolute(file.to_owned()));
    }
    let plain = file.len() <= 4096
        && !file.contains('\0')
        && file[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !plain {
        return Err(LaunchFileError::NotPlain(file.to_owned()));
    }
    let inside = |v: &VolumeSpec| -> Option<PathBuf> {
        let rest = path.strip_prefix(&v.mount_path).ok()?;
        (rest.components().next().is_some()).then(|| rest.to_path_buf())
    };
    let Some((volume, rest)) = selected
        .iter()
        .find_map(|v| inside(v).map(|rest| (v, rest)))
    else {
        if let Some(v) = all.iter().find(|v| inside(&v.spec).is_some()) {
            return Err(LaunchFileError::VolumeNotSelected {
                file: file.to_owned(),
                volume: v.spec.name.clone(),
            });
        }
        let mounts: Vec<String> = selected
            .iter()
            .map(|v| v.mount_path.display().to_string())
            .collect();
        return Err(if mounts.is_empty() {
            LaunchFileError::NoVolumeSelected(file.to_owned())
        } else {
            LaunchFileError::OutsideMounts {
                file: file.to_owned(),
                mounts,
            }
        });
    };
    let missing = || LaunchFileError::Missing {
        file: file.to_owned(),
        volume: volume.name.clone(),
    };
    debug_assert!(rest.components().all(|c| matches!(c, Component::Normal(_))));
    let root = volume.source.canonicalize().map_err(|_| missing())?;
    let real = volume
        .source
        .join(&rest)
        .canonicalize()
        .map_err(|_| missing())?;
    let Ok(within) = real.strip_prefix(&root) else {
        return Err(LaunchFileError::Escapes {
            file: file.to_owned(),
            volume: volume.name.clone(),
        });
    };
    if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
        return Err(LaunchFileError::NotAFile(file.to_owned()));
    }
    Ok(volume.mount_path.join(within).display().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use insitu_domain::volume::VolumeConfig;

    fn volume(name: &str, source: &Path) -> VolumeSpec {
        VolumeSpec::from_config(VolumeConfig {
            name: name.to_owned(),
            title: name.to_owned(),
            description: String::new(),
            source: source.to_path_buf(),
            mount_path: None,
            zone: None,
            metadata: Default::default(),
            visible_to: None,
        })
        .unwrap()
    }

    #[test]
    fn launch_files_must_be_plain_paths_to_files_inside_a_selected_volume() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x.fits"), "x").unwrap();
        std::fs::write(a.join("sub/y.fits"), "y").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", a.join("escape")).unwrap();
        std::os::unix::fs::symlink("sub/y.fits", a.join("alias.fits")).unwrap();
        let (va, vb) = (volume("vol-a", &a), volume("vol-b", &b));
        let all: Vec<VolumeEntry> = [&va, &vb]
            .into_iter()
            .map(|v| VolumeEntry {
                spec: v.clone(),
                file_count: 0,
                size_bytes: 0,
            })
            .collect();
        let sel = [va.clone()];
        let ok = |f: &str| resolve_launch_file(&sel, &all, f);
        assert_eq!(
            ok("/media/data/vol-a/x.fits").unwrap(),
            "/media/data/vol-a/x.fits"
        );
        assert_eq!(
            ok("/media/data/vol-a/sub/y.fits").unwrap(),
            "/media/data/vol-a/sub/y.fits"
        );
        // A link inside the volume is followed to where the lab finds it.
        assert_eq!(
            ok("/media/data/vol-a/alias.fits").unwrap(),
            "/media/data/vol-a/sub/y.fits"
        );
        for (f, says) in [
            ("media/data/vol-a/x.fits", "not absolute"),
            ("/media/data/vol-a/../vol-a/x.fits", "plain path"),
            ("/media/data/vol-a//x.fits", "plain path"),
            ("/media/data/vol-a/./x.fits", "plain path"),
            ("/media/data/vol-a/x.fits/", "plain path"),
            ("/media/data/vol-a", "not inside the mount path"),
            ("/etc/passwd", "not inside the mount path"),
            ("/media/data/vol-b/x.fits", "not among the volumes to mount"),
            ("/media/data/vol-a/nope.fits", "there is no file"),
            ("/media/data/vol-a/escape", "outside the volume"),
            ("/media/data/vol-a/sub", "not a file"),
        ] {
            let e = ok(f).unwrap_err().to_string();
            assert!(e.contains(says), "{f}: {e}");
        }
        let e = resolve_launch_file(&[], &all, "/srv/x.fits")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no volume is selected"), "{e}");
    }
}
