//! Datazones: the zones of the configuration (`local`, this machine, is
//! always there), what each has (volumes, capacity: for a Slurm zone from
//! its nodes), and placement: which zone a launch or a run that names
//! volumes goes to ([`place`], a pure function the runs can use too).

use std::collections::BTreeMap;

use insitu_domain::{Name, VolumeSpec, ZoneKind, ZoneResources, ZoneSpec};
use insitu_launcher::slurm::{NodeInfo, SlurmCluster, SlurmError};

use crate::error::Error;

/// Why no zone could be chosen ([`place`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The zone asked for does not exist.
    #[error("no datazone {0:?}")]
    UnknownZone(String),
    /// The zone asked for lacks some of the volumes: which are where.
    #[error("the datazone {zone} does not hold {}", where_they_are(missing))]
    NotInZone {
        zone: String,
        missing: Vec<(String, String)>,
    },
    /// No zone holds every volume asked for: which is where.
    #[error("no datazone holds all of these volumes: {}", where_they_are(volumes))]
    Split { volumes: Vec<(String, String)> },
}

fn where_they_are(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(v, z)| format!("{v} is in {z}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The zone a launch or a run goes to: the one `asked` for (which must
/// hold every volume), or else the one holding all `volumes` (each
/// volume's name and zone); with no volumes, `asked` or `default`. Where
/// several zones could take work without volumes, the caller's choice
/// wins; there is no other tie, since a volume lives in one zone.
pub fn place<'a>(
    zones: &'a [Name],
    volumes: &[(&str, &str)],
    asked: Option<&str>,
    default: &'a Name,
) -> Result<&'a Name, PlacementError> {
    let find = |z: &str| zones.iter().find(|n| n.as_str() == z);
    if let Some(a) = asked {
        let zone = find(a).ok_or_else(|| PlacementError::UnknownZone(a.to_owned()))?;
        let missing: Vec<(String, String)> = volumes
            .iter()
            .filter(|(_, z)| *z != a)
            .map(|(v, z)| ((*v).to_owned(), (*z).to_owned()))
            .collect();
        if !missing.is_empty() {
            return Err(PlacementError::NotInZone {
                zone: a.to_owned(),
                missing,
            });
        }
        return Ok(zone);
    }
    let Some((_, first)) = volumes.first() else {
        return Ok(default);
    };
    if volumes.iter().any(|(_, z)| z != first) {
        return Err(PlacementError::Split {
            volumes: volumes
                .iter()
                .map(|(v, z)| ((*v).to_owned(), (*z).to_owned()))
                .collect(),
        });
    }
    find(first).ok_or_else(|| PlacementError::UnknownZone((*first).to_owned()))
}

/// How long the zones' overview waits for a scheduler's figures.
const CAPACITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// One zone as users see it.
#[derive(Debug, Clone)]
pub struct ZoneView {
    pub spec: ZoneSpec,
    /// The volumes it holds that the viewer may see, by name.
    pub volumes: Vec<Name>,
    /// What it has in all and free now, where known (a Slurm zone's from
    /// its nodes; the configuration's figures otherwise).
    pub capacity: ZoneResources,
    pub free: ZoneResources,
    /// Why the figures are missing: the scheduler could not be asked.
    pub unavailable: Option<String>,
}

/// The configured zones.
pub struct Zones {
    zones: BTreeMap<String, ZoneSpec>,
    default: Name,
}

impl Zones {
    /// `local` plus `configured` (a configured `local` replaces the
    /// built-in one's title and figures).
    pub fn new(configured: Vec<ZoneSpec>) -> Zones {
        let mut zones = BTreeMap::new();
        let local = ZoneSpec::local();
        zones.insert(local.name.to_string(), local);
        for z in configured {
            zones.insert(z.name.to_string(), z);
        }
        Zones {
            zones,
            default: Name::local_zone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ZoneSpec> {
        self.zones.get(name)
    }

    /// Every zone, `local` first.
    pub fn all(&self) -> Vec<&ZoneSpec> {
        let mut v: Vec<&ZoneSpec> = self.zones.values().collect();
        v.sort_by_key(|z| (z.name != self.default, z.name.to_string()));
        v
    }

    pub fn default_zone(&self) -> &Name {
        &self.default
    }

    /// The Slurm cluster of zone `name`, if it is a Slurm zone.
    pub fn cluster(&self, name: &str) -> Option<SlurmCluster> {
        let z = self.zones.get(name)?;
        let s = z.slurm.as_ref()?;
        Some(SlurmCluster {
            conf: s.slurm_conf.clone(),
            partition: s.partition.clone(),
            account: s.account.clone(),
        })
    }

    /// The zone for a launch of `volumes`, the caller's choice `asked`
    /// if any (see [`place`]).
    pub fn place(&self, volumes: &[VolumeSpec], asked: Option<&str>) -> Result<ZoneSpec, Error> {
        let names: Vec<Name> = self.zones.values().map(|z| z.name.clone()).collect();
        let pairs: Vec<(&str, &str)> = volumes
            .iter()
            .map(|v| (v.name.as_str(), v.zone.as_str()))
            .collect();
        let zone = place(&names, &pairs, asked, &self.default)?;
        self.zones
            .get(zone.as_str())
            .cloned()
            .ok_or_else(|| Error::Placement(PlacementError::UnknownZone(zone.to_string())))
    }

    /// Every zone with the `volumes` the viewer may see and its capacity.
    pub async fn overview(&self, volumes: &[VolumeSpec]) -> Vec<ZoneView> {
        let mut out = Vec::new();
        for spec in self.all() {
            let held = volumes
                .iter()
                .filter(|v| v.zone == spec.name)
                .map(|v| v.name.clone())
                .collect();
            let (mut capacity, mut free, mut unavailable) = (spec.resources, spec.resources, None);
            if let Some(cluster) = self.cluster(spec.name.as_str()) {
                match cluster.nodes_within(CAPACITY_TIMEOUT).await {
                    Ok(nodes) => (capacity, free) = node_capacity(&nodes),
                    Err(e) => unavailable = Some(e.to_string()),
                }
            } else if spec.kind == ZoneKind::Local {
                (capacity, free) = local_capacity(spec.resources);
            }
            out.push(ZoneView {
                spec: spec.clone(),
                volumes: held,
                capacity,
                free,
                unavailable,
            });
        }
        out
    }
}

/// What a Slurm zone's nodes have, and have free (nodes that are down or
/// drained count as having nothing free).
fn node_capacity(nodes: &[NodeInfo]) -> (ZoneResources, ZoneResources) {
    let up = |n: &&NodeInfo| {
        let s = n.state.to_ascii_uppercase();
        !["DOWN", "DRAIN", "FAIL", "NOT_RESPONDING"]
            .iter()
            .any(|x| s.contains(x))
    };
    let total = ZoneResources {
        cpu: Some(nodes.iter().map(|n| f64::from(n.cpus)).sum()),
        memory_bytes: Some(nodes.iter().map(|n| n.memory_bytes).sum()),
        gpu: Some(nodes.iter().map(|n| n.gpus).sum()),
    };
    let free = ZoneResources {
        cpu: Some(
            nodes
                .iter()
                .filter(up)
                .map(|n| f64::from(n.cpus.saturating_sub(n.cpus_allocated)))
                .sum(),
        ),
        memory_bytes: Some(
            nodes
                .iter()
                .filter(up)
                .map(|n| n.memory_bytes.saturating_sub(n.memory_allocated_bytes))
                .sum(),
        ),
        gpu: Some(
            nodes
                .iter()
                .filter(up)
                .map(|n| n.gpus.saturating_sub(n.gpus_allocated))
                .sum(),
        ),
    };
    (total, free)
}

/// This machine: its cores and memory (total and available), unless the
/// configuration says otherwise.
fn local_capacity(configured: ZoneResources) -> (ZoneResources, ZoneResources) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    let cpus = std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
        .map(f64::from);
    let total = ZoneResources {
        cpu: configured.cpu.or(cpus),
        memory_bytes: configured.memory_bytes.or(kib("MemTotal:")),
        gpu: configured.gpu,
    };
    let free = ZoneResources {
        cpu: total.cpu,
        memory_bytes: kib("MemAvailable:").or(total.memory_bytes),
        gpu: total.gpu,
    };
    (total, free)
}

impl From<SlurmError> for Error {
    fn from(e: SlurmError) -> Error {
        Error::Scheduler(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<Name> {
        n.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn work_without_volumes_goes_where_asked_or_to_the_default() {
        let zones = names(&["local", "cluster"]);
        let local = Name::local_zone();
        assert_eq!(place(&zones, &[], None, &local).unwrap().as_str(), "local");
        assert_eq!(
            place(&zones, &[], Some("cluster"), &local)
                .unwrap()
                .as_str(),
            "cluster"
        );
        assert_eq!(
            place(&zones, &[], Some("moon"), &local),
            Err(PlacementError::UnknownZone("moon".into()))
        );
    }

    #[test]
    fn work_goes_to_the_zone_holding_its_volumes() {
        let zones = names(&["local", "cluster"]);
        let local = Name::local_zone();
        let vols = [("planck", "cluster"), ("gaia", "cluster")];
        assert_eq!(
            place(&zones, &vols, None, &local).unwrap().as_str(),
            "cluster"
        );
        assert_eq!(
            place(&zones, &vols, Some("cluster"), &local)
                .unwrap()
                .as_str(),
            "cluster"
        );
    }

    #[test]
    fn volumes_in_several_zones_are_refused_saying_which_is_where() {
        let zones = names(&["local", "cluster"]);
        let local = Name::local_zone();
        let vols = [("planck", "cluster"), ("gaia", "local")];
        let e = place(&zones, &vols, None, &local).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no datazone holds all of these volumes: planck is in cluster, gaia is in local"
        );
        let e = place(&zones, &vols, Some("local"), &local).unwrap_err();
        assert_eq!(
            e,
            PlacementError::NotInZone {
                zone: "local".into(),
                missing: vec![("planck".into(), "cluster".into())]
            }
        );
        // A volume in a zone that is not configured.
        assert_eq!(
            place(&zones, &[("x", "gone")], None, &local),
            Err(PlacementError::UnknownZone("gone".into()))
        );
    }

    #[test]
    fn a_zone_s_free_capacity_leaves_out_nodes_that_are_down() {
        let node = |state: &str| NodeInfo {
            name: "n".into(),
            state: state.into(),
            cpus: 4,
            cpus_allocated: 1,
            memory_bytes: 8 << 30,
            memory_allocated_bytes: 2 << 30,
            gpus: 2,
            gpus_allocated: 1,
            ..NodeInfo::default()
        };
        let (total, free) = node_capacity(&[node("MIXED"), node("DOWN+DRAIN")]);
        assert_eq!(total.cpu, Some(8.0));
        assert_eq!(free.cpu, Some(3.0));
        assert_eq!(free.memory_bytes, Some(6 << 30));
        assert_eq!(free.gpu, Some(1));
    }
}
