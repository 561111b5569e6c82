//! Data volumes: catalogued, read-only dataset trees that labs and pipeline
//! steps mount at a known path.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audience::Audience;
use crate::datalab::DefinitionError;
use crate::name::Name;

/// Where volumes are mounted unless their definition says otherwise.
pub const DEFAULT_MOUNT_ROOT: &str = "/media/data";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeMetadata {
    #[serde(default)]
    pub domain: Vec<String>,
    #[serde(default)]
    pub mission: Vec<String>,
    #[serde(default)]
    pub instrument: Vec<String>,
}

/// A volume as an operator writes it in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Directory on the datazone's hosts holding the data.
    pub source: PathBuf,
    /// Where labs see it; defaults to `/media/data/<name>`.
    #[serde(default)]
    pub mount_path: Option<PathBuf>,
    /// Datazone holding the data; defaults to `local`.
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub metadata: VolumeMetadata,
    /// Who may see and mount the volume: grants such as `user:alice`,
    /// `role:developer` or `team:planck`. Unset: everyone.
    #[serde(default)]
    pub visible_to: Option<Vec<String>>,
}

/// A validated data volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: Name,
    pub title: String,
    pub description: String,
    pub source: PathBuf,
    pub mount_path: PathBuf,
    pub zone: Name,
    pub metadata: VolumeMetadata,
    /// Who may see it, list it, count it, add it and mount it.
    pub audience: Audience,
}

impl VolumeSpec {
    pub fn from_config(c: VolumeConfig) -> Result<VolumeSpec, Vec<DefinitionError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, reason: String| {
            errors.push(DefinitionError {
                field: field.to_owned(),
                reason,
            })
        };
        let name = c
            .name
            .parse::<Name>()
            .map_err(|e| err("name", format!("{:?} {e}", c.name)))
            .ok();
        let zone_text = c.zone.as_deref().unwrap_or("local");
        let zone = zone_text
            .parse::<Name>()
            .map_err(|e| err("zone", format!("{zone_text:?} {e}")))
            .ok();
        if c.title.trim().is_empty() {
            err("title", "must not be empty".to_owned());
        }
        if !c.source.is_absolute() {
            err("source", "must be an absolute path".to_owned());
        }
        let mount_path = match (&c.mount_path, &name) {
            (Some(p), _) => p.clone(),
            (None, Some(n)) => Path::new(DEFAULT_MOUNT_ROOT).join(n.as_str()),
            (None, None) => PathBuf::new(),
        };
        if let Err(reason) = check_mount_path(&mount_path) {
            err("mount_path", reason.to_string());
        }
        let audience = Audience::parse(c.visible_to.as_deref())
            .map_err(|reason| err("visible_to", reason.to_string()))
            .unwrap_or_default();
        match (name, zone) {
            (Some(name), Some(zone)) if errors.is_empty() => Ok(VolumeSpec {
                name,
                title: c.title,
                description: c.description,
                source: c.source,
                mount_path,
                zone,
                metadata: c.metadata,
                audience,
            }),
            _ => Err(errors),
        }
    }

    /// Words a text search over volumes matches against.
    pub fn search_text(&self) -> String {
        let m = &self.metadata;
        [
            self.name.as_str(),
            &self.title,
            &self.description,
            &m.domain.join(" "),
            &m.mission.join(" "),
            &m.instrument.join(" "),
        ]
        .join(" ")
        .to_lowercase()
    }
}

/// What is wrong with a mount path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountPathError {
    #[error("{} must be an absolute path", .0.display())]
    NotAbsolute(PathBuf),
    #[error("{} must not contain '.' or '..'", .0.display())]
    Dots(PathBuf),
    #[error("{} would hide a system directory", .0.display())]
    HidesSystem(PathBuf),
}

/// A mount path must be absolute, normal (no `.`/`..`) and not shadow the
/// system directories a lab needs.
pub fn check_mount_path(p: &Path) -> Result<(), MountPathError> {
    if !p.is_absolute() {
        return Err(MountPathError::NotAbsolute(p.to_path_buf()));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(MountPathError::Dots(p.to_path_buf()));
    }
    const RESERVED: [&str; 9] = [
        "/", "/bin", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/tmp",
    ];
    if RESERVED
        .iter()
        .any(|r| p == Path::new(r) || (*r != "/" && p.starts_with(r)))
    {
        return Err(MountPathError::HidesSystem(p.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str) -> VolumeConfig {
        VolumeConfig {
            name: name.into(),
            title: "Gaia DR3".into(),
            description: String::new(),
            source: "/srv/archive/gaia".into(),
            mount_path: None,
            zone: None,
            metadata: VolumeMetadata::default(),
            visible_to: None,
        }
    }

    #[test]
    fn default_mount_path_and_zone() {
        let v = VolumeSpec::from_config(cfg("gaia-dr3")).unwrap();
        assert_eq!(v.mount_path, Path::new("/media/data/gaia-dr3"));
        assert_eq!(v.zone.as_str(), "local");
    }

    #[test]
    fn refuses_paths_that_escape_or_shadow() {
        for bad in ["relative", "/media/../etc", "/usr/share", "/", "/proc/1"] {
            let mut c = cfg("x");
            c.mount_path = Some(bad.into());
            assert!(VolumeSpec::from_config(c).is_err(), "{bad}");
        }
        let mut c = cfg("../x");
        c.source = "rel".into();
        let errs = VolumeSpec::from_config(c).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "source", "mount_path"]);
    }

    #[test]
    fn visible_to_restricts_the_audience_and_bad_grants_are_named() {
        let mut c = cfg("gaia-dr4");
        c.visible_to = Some(vec!["user:alice".into(), "role:developer".into()]);
        let v = VolumeSpec::from_config(c.clone()).unwrap();
        assert_eq!(v.audience.grants(), ["user:alice", "role:developer"]);
        assert!(
            VolumeSpec::from_config(cfg("open"))
                .unwrap()
                .audience
                .is_public()
        );
        c.visible_to = Some(vec!["everyone".into()]);
        let errs = VolumeSpec::from_config(c).unwrap_err();
        assert_eq!(errs[0].field, "visible_to");
        assert!(errs[0].reason.contains("everyone"), "{}", errs[0].reason);
    }
}
