//! Datazones: the execution infrastructures labs and pipeline steps run
//! on. `local` is this machine's sandbox and exists without configuration;
//! an operator adds others (`[[zones]]`), each a Slurm cluster with its
//! partition, resources and limits. Volumes name the zone holding their
//! data ([`crate::VolumeSpec::zone`]).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::datalab::{DefinitionError, parse_bytes};
use crate::name::Name;

/// The name of this machine's sandbox zone, the default.
pub const LOCAL_ZONE: &str = "local";

/// What a zone runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// Bubblewrap sandboxes on the platform's own host.
    #[default]
    Local,
    /// Batch jobs on a Slurm cluster, each a bubblewrap sandbox on its node.
    Slurm,
}

impl ZoneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneKind::Local => "local",
            ZoneKind::Slurm => "slurm",
        }
    }
}

impl fmt::Display for ZoneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A zone as an operator writes it (`[[zones]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub kind: ZoneKind,
    /// The cluster's `slurm.conf` (given to Slurm's commands as
    /// `SLURM_CONF`); unset, their default.
    #[serde(default)]
    pub slurm_conf: Option<PathBuf>,
    /// The partition labs are submitted to; unset, the cluster's default.
    #[serde(default)]
    pub partition: Option<String>,
    /// The account jobs are charged to.
    #[serde(default)]
    pub account: Option<String>,
    /// The memory a lab asks of Slurm when its datalab names none
    /// (default `2GiB`).
    #[serde(default)]
    pub default_memory: Option<String>,
    /// What the zone has in all, shown to users (a Slurm zone reports its
    /// nodes' own figures as well).
    #[serde(default)]
    pub resources: ZoneResourcesConfig,
    /// The most one lab may ask for in this zone.
    #[serde(default)]
    pub limits: ZoneResourcesConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneResourcesConfig {
    #[serde(default)]
    pub cpu: Option<f64>,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub gpu: Option<u32>,
}

/// CPU, memory and GPUs: a zone's, or the most a lab may have there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneResources {
    pub cpu: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub gpu: Option<u32>,
}

/// Where a Slurm zone's jobs go.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmTarget {
    pub slurm_conf: Option<PathBuf>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub default_memory_bytes: u64,
}

/// A validated zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSpec {
    pub name: Name,
    pub title: String,
    pub kind: ZoneKind,
    /// Set for a Slurm zone.
    pub slurm: Option<SlurmTarget>,
    pub resources: ZoneResources,
    pub limits: ZoneResources,
}

/// The memory a Slurm lab asks for when its datalab names none.
pub const DEFAULT_SLURM_MEMORY: u64 = 2 << 30;

impl ZoneSpec {
    /// The zone that exists without configuration: this machine.
    pub fn local() -> ZoneSpec {
        ZoneSpec {
            name: Name::local_zone(),
            title: "This server".to_owned(),
            kind: ZoneKind::Local,
            slurm: None,
            resources: ZoneResources::default(),
            limits: ZoneResources::default(),
        }
    }

    pub fn from_config(c: ZoneConfig) -> Result<ZoneSpec, Vec<DefinitionError>> {
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
        let bytes = |field: &str, v: &Option<String>, err: &mut dyn FnMut(&str, String)| {
            v.as_deref()
                .and_then(|s| parse_bytes(s).map_err(|e| err(field, e.to_string())).ok())
        };
        let resources = ZoneResources {
            cpu: c.resources.cpu,
            memory_bytes: bytes("resources.memory", &c.resources.memory, &mut err),
            gpu: c.resources.gpu,
        };
        let limits = ZoneResources {
            cpu: c.limits.cpu,
            memory_bytes: bytes("limits.memory", &c.limits.memory, &mut err),
            gpu: c.limits.gpu,
        };
        for (field, cpu) in [("resources.cpu", resources.cpu), ("limits.cpu", limits.cpu)] {
            if cpu.is_some_and(|c| !c.is_finite() || c <= 0.0) {
                err(field, "must be a positive number of cores".to_owned());
            }
        }
        let default_memory = bytes("default_memory", &c.default_memory, &mut err);
        let slurm = match c.kind {
            ZoneKind::Local => {
                for (field, set) in [
                    ("slurm_conf", c.slurm_conf.is_some()),
                    ("partition", c.partition.is_some()),
                    ("account", c.account.is_some()),
                    ("default_memory", c.default_memory.is_some()),
                ] {
                    if set {
                        err(field, "is for zones of kind slurm".to_owned());
                    }
                }
                None
            }
            ZoneKind::Slurm => {
                if c.slurm_conf.as_ref().is_some_and(|p| !p.is_absolute()) {
                    err("slurm_conf", "must be an absolute path".to_owned());
                }
                for (field, v) in [("partition", &c.partition), ("account", &c.account)] {
                    if let Some(v) = v
                        && (v.is_empty()
                            || !v
                                .chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)))
                    {
                        err(field, format!("{v:?} is not a Slurm name"));
                    }
                }
                Some(SlurmTarget {
                    slurm_conf: c.slurm_conf.clone(),
                    partition: c.partition.clone(),
                    account: c.account.clone(),
                    default_memory_bytes: default_memory.unwrap_or(DEFAULT_SLURM_MEMORY),
                })
            }
        };
        if name.as_ref().is_some_and(|n| n.as_str() == LOCAL_ZONE) && c.kind != ZoneKind::Local {
            err(
                "kind",
                "the zone `local` is this machine's sandbox".to_owned(),
            );
        }
        match name {
            Some(name) if errors.is_empty() => Ok(ZoneSpec {
                title: if c.title.is_empty() {
                    name.to_string()
                } else {
                    c.title
                },
                name,
                kind: c.kind,
                slurm,
                resources,
                limits,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slurm(name: &str) -> ZoneConfig {
        ZoneConfig {
            name: name.to_owned(),
            kind: ZoneKind::Slurm,
            slurm_conf: Some("/etc/slurm/slurm.conf".into()),
            partition: Some("main".to_owned()),
            ..ZoneConfig::default()
        }
    }

    #[test]
    fn a_slurm_zone_parses_with_its_defaults() {
        let z = ZoneSpec::from_config(slurm("cluster")).unwrap();
        assert_eq!(z.title, "cluster");
        let s = z.slurm.unwrap();
        assert_eq!(s.default_memory_bytes, DEFAULT_SLURM_MEMORY);
        assert_eq!(s.partition.as_deref(), Some("main"));
    }

    #[test]
    fn bad_zones_say_every_problem() {
        let mut c = slurm("Bad Name");
        c.partition = Some("main; rm".to_owned());
        c.slurm_conf = Some("relative.conf".into());
        c.limits.memory = Some("lots".to_owned());
        let fields: Vec<String> = ZoneSpec::from_config(c)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for f in ["name", "partition", "slurm_conf", "limits.memory"] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
        let mut local = slurm("local");
        local.kind = ZoneKind::Slurm;
        assert!(ZoneSpec::from_config(local).is_err());
        let mut plain = slurm("here");
        plain.kind = ZoneKind::Local;
        assert!(ZoneSpec::from_config(plain).is_err());
    }
}
