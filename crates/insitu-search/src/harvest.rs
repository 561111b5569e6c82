//! The harvester: walks data volumes and keeps their datasets in the index,
//! incrementally. A file is read again only when its size, modification
//! time or inode changed (or a sidecar of it, or its volume's settings);
//! files that are gone leave the index. Symbolic links, dotfiles and
//! anything but regular files are never followed or read.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::asset::{Asset, AssetKind};
use crate::fitsmeta::{FitsFacts, facts};
use crate::index::{IndexError, SearchIndex};
use crate::sidecar::{DIRECTORY_SIDECAR, FILE_SIDECAR_SUFFIX, Sidecar};

/// A volume to harvest, as the platform describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSource {
    pub name: String,
    /// The directory holding the data on this host.
    pub root: PathBuf,
    /// Where labs see it.
    pub mount_path: PathBuf,
    /// The volume's audience keys; its datasets inherit them.
    pub audience: Vec<String>,
    /// The volume's metadata, the datasets' defaults.
    pub domain: Vec<String>,
    pub mission: Vec<String>,
    pub instrument: Vec<String>,
}

impl VolumeSource {
    /// A digest of everything about the volume that its datasets' records
    /// depend on.
    pub fn settings_digest(&self) -> String {
        digest(&[
            &self.name,
            &self.mount_path.display().to_string(),
            &self.audience.join(","),
            &self.domain.join(","),
            &self.mission.join(","),
            &self.instrument.join(","),
        ])
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file the harvester could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HarvestProblem {
    pub volume: String,
    /// The file's path inside the volume.
    pub file: String,
    pub reason: String,
}

/// How a harvest is going (or went).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HarvestProgress {
    pub running: bool,
    /// Unix seconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The volume being walked.
    pub volume: Option<String>,
    /// Dataset files found (FITS files and files with a sidecar).
    pub files_seen: u64,
    /// Files read because they were new or changed.
    pub files_read: u64,
    /// Files read and put in the index.
    pub files_indexed: u64,
    /// Files skipped because nothing about them changed.
    pub files_unchanged: u64,
    /// Datasets that left the index because their file is gone.
    pub files_removed: u64,
    /// Files not taken, with the reason (at most [`MAX_PROBLEMS`] kept).
    pub problems: Vec<HarvestProblem>,
    pub problem_count: u64,
}

/// How many problems a progress report keeps.
pub const MAX_PROBLEMS: usize = 200;

/// Commits this often while walking a large volume.
const COMMIT_EVERY: u64 = 20_000;

/// Runs harvests one at a time and reports their progress.
#[derive(Default)]
pub struct Harvester {
    progress: Mutex<HarvestProgress>,
    run: Mutex<()>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether a file's name says FITS.
pub fn is_fits(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".fits", ".fit", ".fts"].iter().any(|e| lower.ends_with(e))
}

struct Candidate {
    rel: String,
    path: PathBuf,
    meta: std::fs::Metadata,
    sidecar: Option<(PathBuf, std::fs::Metadata)>,
    inherited: Sidecar,
    inherited_digest: String,
}

fn stat_digest(m: &std::fs::Metadata) -> String {
    format!("{}:{}.{}:{}", m.len(), m.mtime(), m.mtime_nsec(), m.ino())
}

impl Harvester {
    pub fn new() -> Harvester {
        Harvester::default()
    }

    /// The current or last harvest's progress.
    pub fn progress(&self) -> HarvestProgress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Marks a harvest as started (before the thread that runs it is up),
    /// so a report taken meanwhile says it runs.
    pub fn mark_started(&self) {
        self.update(|p| {
            *p = HarvestProgress {
                running: true,
                started_at: Some(now()),
                ..HarvestProgress::default()
            }
        });
    }

    /// Whether a harvest is running now.
    pub fn is_running(&self) -> bool {
        self.progress().running
    }

    fn update(&self, f: impl FnOnce(&mut HarvestProgress)) {
        if let Ok(mut p) = self.progress.lock() {
            f(&mut p);
        }
    }

    fn problem(&self, volume: &str, file: &str, reason: String) {
        tracing::debug!(volume, file, reason = %reason, "harvest: file not taken");
        self.update(|p| {
            p.problem_count += 1;
            if p.problems.len() < MAX_PROBLEMS {
                p.problems.push(HarvestProblem {
                    volume: volume.to_owned(),
                    file: file.to_owned(),
                    reason,
                });
            }
        });
    }

    /// Brings the index's datasets in line with the volumes: reads new and
    /// changed files, drops removed ones, and drops the datasets of volumes
    /// no longer listed. Blocks; one harvest runs at a time (a second call
    /// waits for the first).
    pub fn run(
        &self,
        index: &SearchIndex,
        sources: &[VolumeSource],
    ) -> Result<HarvestProgress, IndexError> {
        let _one = self.run.lock().map_err(|_| IndexError::Poisoned)?;
        self.mark_started();
        let result = self.walk_all(index, sources);
        self.update(|p| {
            p.running = false;
            p.volume = None;
            p.finished_at = Some(now());
        });
        let progress = self.progress();
        tracing::info!(
            seen = progress.files_seen,
            read = progress.files_read,
            indexed = progress.files_indexed,
            unchanged = progress.files_unchanged,
            removed = progress.files_removed,
            problems = progress.problem_count,
            "harvest finished"
        );
        result.map(|()| progress)
    }

    fn walk_all(&self, index: &SearchIndex, sources: &[VolumeSource]) -> Result<(), IndexError> {
        let listed: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut stale: HashSet<String> = HashSet::new();
        for a in index.assets(AssetKind::Dataset, None)? {
            if let Some(v) = a.volume
                && !listed.contains(v.as_str())
            {
                stale.insert(v);
            }
        }
        for v in &stale {
            index.remove_volume_datasets(v)?;
        }
        if !stale.is_empty() {
            index.commit()?;
        }
        for source in sources {
            self.update(|p| p.volume = Some(source.name.clone()));
            self.walk(index, source)?;
            index.commit()?;
        }
        Ok(())
    }

    fn walk(&self, index: &SearchIndex, source: &VolumeSource) -> Result<(), IndexError> {
        let known: HashMap<String, String> = index
            .assets(AssetKind::Dataset, Some(&source.name))?
            .into_iter()
            .map(|a| (a.name.clone(), a.fingerprint.unwrap_or_default()))
            .collect();
        if !source.root.is_dir() {
            // Storage that is away (unmounted, unreachable) keeps what the
            // index knows until it is back.
            self.problem(
                &source.name,
                "",
                format!(
                    "the volume's source {} cannot be read",
                    source.root.display()
                ),
            );
            return Ok(());
        }
        let settings = source.settings_digest();
        let mut seen: HashSet<String> = HashSet::new();
        let mut since_commit = 0u64;
        let mut stack: Vec<(PathBuf, String, Sidecar, String)> = vec![(
            source.root.clone(),
            String::new(),
            Sidecar::default(),
            String::new(),
        )];
        while let Some((dir, rel_dir, inherited, inherited_digest)) = stack.pop() {
            let (here, here_digest) =
                self.directory_sidecar(source, &dir, &rel_dir, &inherited, &inherited_digest);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                self.problem(
                    &source.name,
                    &rel_dir,
                    "cannot read the directory".to_owned(),
                );
                continue;
            };
            let mut names: Vec<(String, std::fs::Metadata)> = entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_owned();
                    let meta = std::fs::symlink_metadata(e.path()).ok()?;
                    Some((name, meta))
                })
                .filter(|(name, _)| !name.starts_with('.'))
                .collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            let files: HashMap<&str, &std::fs::Metadata> = names
                .iter()
                .filter(|(_, m)| m.file_type().is_file())
                .map(|(n, m)| (n.as_str(), m))
                .collect();
            for (name, meta) in &names {
                let rel = if rel_dir.is_empty() {
                    name.clone()
                } else {
                    format!("{rel_dir}/{name}")
                };
                if meta.file_type().is_dir() {
                    stack.push((dir.join(name), rel, here.clone(), here_digest.clone()));
                    continue;
                }
                if !meta.file_type().is_file()
                    || name == DIRECTORY_SIDECAR
                    || name.ends_with(FILE_SIDECAR_SUFFIX)
                {
                    continue;
                }
                let sidecar_name = format!("{name}{FILE_SIDECAR_SUFFIX}");
                let sidecar = files
                    .get(sidecar_name.as_str())
                    .map(|m| (dir.join(&sidecar_name), (*m).clone()));
                if !is_fits(name) && sidecar.is_none() {
                    continue;
                }
                let c = Candidate {
                    rel: rel.clone(),
                    path: dir.join(name),
                    meta: meta.clone(),
                    sidecar,
                    inherited: here.clone(),
                    inherited_digest: here_digest.clone(),
                };
                seen.insert(rel.clone());
                self.update(|p| p.files_seen += 1);
                let fingerprint = digest(&[
                    &settings,
                    &stat_digest(&c.meta),
                    &c.sidecar
                        .as_ref()
                        .map(|(_, m)| stat_digest(m))
                        .unwrap_or_default(),
                    &c.inherited_digest,
                ]);
                if known.get(&rel) == Some(&fingerprint) {
                    self.update(|p| p.files_unchanged += 1);
                    continue;
                }
                self.update(|p| p.files_read += 1);
                match self.describe(source, &c, fingerprint) {
                    Some(asset) if known.contains_key(&rel) => {
                        index.upsert(&asset)?;
                        self.update(|p| p.files_indexed += 1);
                    }
                    Some(asset) => {
                        index.add(&asset)?;
                        self.update(|p| p.files_indexed += 1);
                    }
                    None => {
                        if known.contains_key(&rel) {
                            index.remove(&format!("dataset:{}/{rel}", source.name))?;
                        }
                    }
                }
                since_commit += 1;
                if since_commit >= COMMIT_EVERY {
                    index.commit()?;
                    since_commit = 0;
                }
            }
        }
        for gone in known.keys().filter(|k| !seen.contains(*k)) {
            index.remove(&format!("dataset:{}/{gone}", source.name))?;
            self.update(|p| p.files_removed += 1);
        }
        Ok(())
    }

    /// A directory's sidecar over what it inherits, and the digest of all
    /// the sidecars that apply there.
    fn directory_sidecar(
        &self,
        source: &VolumeSource,
        dir: &Path,
        rel_dir: &str,
        inherited: &Sidecar,
        inherited_digest: &str,
    ) -> (Sidecar, String) {
        let path = dir.join(DIRECTORY_SIDECAR);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return (inherited.clone(), inherited_digest.to_owned());
        };
        let digest_here = digest(&[inherited_digest, &stat_digest(&meta)]);
        let rel = if rel_dir.is_empty() {
            DIRECTORY_SIDECAR.to_owned()
        } else {
            format!("{rel_dir}/{DIRECTORY_SIDECAR}")
        };
        if !meta.file_type().is_file() {
            return (inherited.clone(), digest_here);
        }
        match Sidecar::read(&path) {
            Ok(s) => (s.over(inherited), digest_here),
            Err(e) => {
                self.problem(&source.name, &rel, e.to_string());
                (inherited.clone(), digest_here)
            }
        }
    }

    /// Reads one file and its sidecars into a dataset; `None` when it is not
    /// to be indexed (the reason, if any, is recorded).
    fn describe(&self, source: &VolumeSource, c: &Candidate, fingerprint: String) -> Option<Asset> {
        let (own, described) = match &c.sidecar {
            None => (Sidecar::default(), false),
            Some((path, _)) => match Sidecar::read(path) {
                Ok(s) => (s, true),
                Err(e) => {
                    self.problem(
                        &source.name,
                        &format!("{}{FILE_SIDECAR_SUFFIX}", c.rel),
                        e.to_string(),
                    );
                    (Sidecar::default(), false)
                }
            },
        };
        let meta = own.over(&c.inherited);
        if meta.index == Some(false) {
            return None;
        }
        let fits = if is_fits(&c.rel) {
            match read_fits(&c.path, &c.meta) {
                Ok(f) => Some(f),
                Err(reason) => {
                    self.problem(&source.name, &c.rel, reason);
                    // A valid sidecar still describes an unreadable file.
                    if !described {
                        return None;
                    }
                    None
                }
            }
        } else if !described {
            return None;
        } else {
            None
        };
        Some(dataset(
            source,
            c,
            &meta,
            fits.unwrap_or_default(),
            fingerprint,
        ))
    }
}

/// Opens a regular file without following a link (or blocking on a
/// FIFO swapped in meanwhile) and reads its FITS headers.
fn read_fits(path: &Path, seen: &std::fs::Metadata) -> Result<FitsFacts, String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open: {e}"))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.file_type().is_file() || meta.ino() != seen.ino() {
        return Err("the file changed while it was read".to_owned());
    }
    let hdus = insitu_fits::read_headers_from(&mut std::io::BufReader::new(file))
        .map_err(|e| format!("not a readable FITS file: {e}"))?;
    Ok(facts(&hdus))
}

fn list(v: Option<crate::sidecar::OneOrMany>) -> Option<Vec<String>> {
    v.map(crate::sidecar::OneOrMany::into_vec)
}

/// The dataset record of a file: sidecar fields first, then the header's,
/// then the volume's.
fn dataset(
    source: &VolumeSource,
    c: &Candidate,
    meta: &Sidecar,
    f: FitsFacts,
    fingerprint: String,
) -> Asset {
    let file_name = c.rel.rsplit('/').next().unwrap_or(&c.rel).to_owned();
    let mut a = Asset::new(AssetKind::Dataset, &c.rel, "", source.audience.clone());
    a.volume = Some(source.name.clone());
    a.file = Some(source.mount_path.join(&c.rel).display().to_string());
    a.object = meta.object.clone().or(f.object);
    a.telescope = meta.telescope.clone().or(f.telescope);
    a.instrument = list(meta.instrument.clone())
        .or_else(|| f.instrument.map(|i| vec![i]))
        .unwrap_or_else(|| source.instrument.clone());
    a.mission = list(meta.mission.clone())
        .or_else(|| (!source.mission.is_empty()).then(|| source.mission.clone()))
        .or_else(|| a.telescope.clone().map(|t| vec![t]))
        .unwrap_or_default();
    a.domain = list(meta.domain.clone()).unwrap_or_else(|| source.domain.clone());
    a.filter = list(meta.filter.clone())
        .or_else(|| f.filter.map(|x| vec![x]))
        .unwrap_or_default();
    a.keywords = meta.keywords.clone().unwrap_or_default();
    a.date_obs = meta.date_obs.clone().or(f.date_obs);
    a.exptime = meta.exptime.or(f.exptime);
    // The sidecar was checked when it was read.
    a.shape = meta.shape().ok().flatten().or(f.shape);
    a.image = f.image;
    a.columns = f.columns;
    a.rows = f.rows;
    a.size_bytes = Some(c.meta.len());
    a.title = meta
        .title
        .clone()
        .unwrap_or_else(|| match (&a.object, a.filter.first()) {
            (Some(o), Some(band)) => format!("{o} ({band}) — {file_name}"),
            (Some(o), None) => format!("{o} — {file_name}"),
            _ => file_name.clone(),
        });
    a.description = meta.description.clone().unwrap_or_else(|| {
        let mut d = match f.content {
            "image" => format!(
                "FITS image {}",
                a.image
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" × ")
            ),
            "table" => format!(
                "FITS table of {} rows: {}",
                a.rows.unwrap_or(0),
                a.columns.join(", ")
            ),
            _ if is_fits(&file_name) => "FITS file".to_owned(),
            _ => "File".to_owned(),
        };
        if let Some(t) = &a.telescope {
            d.push_str(&format!(" from {t}"));
        }
        if let Some(i) = a.instrument.first() {
            d.push_str(&format!(" / {i}"));
        }
        d
    });
    a.fingerprint = Some(fingerprint);
    a
}
