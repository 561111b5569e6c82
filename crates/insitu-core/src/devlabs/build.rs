//! Builds: a draft's image made with podman in the background, one build of
//! a datalab at a time and `devlabs.concurrent_builds` in all, each in a
//! control group with the build limits, on the build network, stopped
//! after `devlabs.build_timeout`. The context is a fresh directory holding
//! only the Containerfile and its files. The log (podman's own output,
//! between a first and a last line of ours) is kept with the build;
//! a failed build names its error line. After each build the images of old
//! builds are removed: the newest `devlabs.keep_builds` successful ones of
//! each datalab stay, and every build submitted for publication or
//! published.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use insitu_domain::devlab::{CONTAINERFILE, build_version};
use insitu_domain::{BuildState, Name, ReleaseState};
use insitu_launcher::{BuildOutcome, BuildSpec};
use insitu_store::{BuildAdmission, BuildRecord};

use super::{Devlabs, check_definition};
use crate::accounts::Principal;
use crate::catalogue::Datalabs;
use crate::clock::now;
use crate::error::Error;

/// A piece of a build's log, and whether the build has ended (so that
/// nothing more will come).
#[derive(Debug, Clone)]
pub struct LogChunk {
    pub bytes: Vec<u8>,
    /// The offset after this chunk.
    pub next: u64,
    pub ended: bool,
}

/// The largest log chunk read at once.
const CHUNK: usize = 64 * 1024;

impl Devlabs {
    fn builds_dir(&self, name: &Name) -> PathBuf {
        self.cfg
            .data_dir
            .join("devlabs")
            .join(name.as_str())
            .join("builds")
    }

    /// Where build `number`'s log is kept.
    pub fn log_path(&self, name: &Name, number: i64) -> PathBuf {
        self.builds_dir(name).join(format!("{number}.log"))
    }

    /// Starts building the caller's draft (its developer only): recorded
    /// at once, built in the background.
    pub async fn start_build(
        self: &Arc<Self>,
        datalabs: &Arc<Datalabs>,
        caller: &Principal,
        name: &str,
    ) -> Result<BuildRecord, Error> {
        let record = self.owned(caller, name).await?;
        check_definition(&record.name, &record.definition)?;
        let problems = record.source.check(&self.cfg.rules);
        if !problems.is_empty() {
            return Err(Error::InvalidSource(problems));
        }
        let version = record.definition.version.clone();
        let pending = BuildRecord {
            devlab: record.name.clone(),
            number: 0,
            version: version.clone(),
            state: BuildState::Queued,
            definition: record.definition.clone(),
            source: record.source.clone(),
            image: format!(
                "{}/{}:{version}-{{number}}",
                self.cfg.repository, record.name
            ),
            image_id: None,
            error: None,
            image_kept: true,
            imported: false,
            created_at: now(),
            started_at: None,
            finished_at: None,
        };
        let number = match self.store.create_build(&pending).await? {
            BuildAdmission::Created(n) => n,
            BuildAdmission::Busy(n) => {
                return Err(Error::BuildRunning {
                    datalab: record.name,
                    number: n,
                });
            }
        };
        let build = self
            .store
            .build(record.name.as_str(), number)
            .await?
            .ok_or_else(|| Error::BuildNotFound {
                datalab: record.name.to_string(),
                number,
            })?;
        let log = self.log_path(&record.name, number);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        append(
            &log,
            &format!(
                "Build {} of {} queued: image {}\n",
                build_version(&version, number),
                record.name,
                build.image
            ),
        );
        let (me, datalabs, queued) = (Arc::clone(self), Arc::clone(datalabs), build.clone());
        tokio::spawn(async move { me.run(&datalabs, queued).await });
        tracing::info!(datalab = %record.name, build = number, "build queued");
        Ok(build)
    }

    /// Runs a queued build to its end and records how it ended.
    async fn run(&self, datalabs: &Datalabs, mut build: BuildRecord) {
        let slots = Arc::clone(&self.slots);
        let Ok(_slot) = slots.acquire_owned().await else {
            return;
        };
        let log = self.log_path(&build.devlab, build.number);
        build.state = BuildState::Running;
        build.started_at = Some(now());
        if let Err(e) = self.store.update_build(&build).await {
            tracing::error!(datalab = %build.devlab, error = %e, "cannot record a build's start");
        }
        append(
            &log,
            &format!("Build started; the build may use {}.\n", self.limits_text()),
        );
        let started = std::time::Instant::now();
        let outcome = self.build_image(&build, &log).await;
        let secs = started.elapsed().as_secs_f64();
        build.finished_at = Some(now());
        match outcome {
            Ok(BuildOutcome::Built(id)) => {
                build.state = BuildState::Succeeded;
                build.image_id = Some(id);
                append(
                    &log,
                    &format!("Build ended with status SUCCESS in {secs:.1} s.\n"),
                );
            }
            Ok(BuildOutcome::Failed(code)) => {
                build.state = BuildState::Failed;
                build.error = Some(error_line(&log).unwrap_or_else(|| {
                    format!(
                        "podman build exited with {}",
                        code.map_or("a signal".to_owned(), |c| format!("code {c}"))
                    )
                }));
                append(
                    &log,
                    &format!("Build ended with status FAILED in {secs:.1} s.\n"),
                );
            }
            Ok(BuildOutcome::TimedOut) => {
                build.state = BuildState::Failed;
                build.error = Some(format!(
                    "the build took longer than {} s and was stopped",
                    self.cfg.build_timeout.as_secs()
                ));
                append(
                    &log,
                    &format!("Build stopped after {secs:.1} s: it took too long.\n"),
                );
            }
            Err(e) => {
                build.state = BuildState::Failed;
                build.error = Some(e.to_string());
                append(&log, &format!("Build could not run: {e}\n"));
            }
        }
        if let Err(e) = self.store.update_build(&build).await {
            tracing::error!(datalab = %build.devlab, error = %e, "cannot record a build's end");
        }
        tracing::info!(datalab = %build.devlab, build = build.number, state = %build.state, secs, "build ended");
        if build.state == BuildState::Succeeded
            && let Err(e) = self.collect(&build.devlab).await
        {
            tracing::warn!(datalab = %build.devlab, error = %e, "cannot collect old images");
        }
        if let Err(e) = self.refresh(datalabs).await {
            tracing::warn!(error = %e, "cannot refresh the catalogue after a build");
        }
    }

    fn limits_text(&self) -> String {
        let l = &self.cfg.build_limits;
        format!(
            "{} of memory, {} CPU, {} processes, {} s, network {:?}",
            l.memory_bytes
                .map_or("unlimited".to_owned(), insitu_domain::datalab::format_bytes),
            l.cpus.unwrap_or(0.0),
            l.max_pids.unwrap_or(0),
            self.cfg.build_timeout.as_secs(),
            self.cfg.build_network
        )
    }

    /// Writes the context, makes the build's control group and network, and
    /// runs podman.
    async fn build_image(&self, build: &BuildRecord, log: &Path) -> Result<BuildOutcome, Error> {
        let dir = self
            .builds_dir(&build.devlab)
            .join(build.number.to_string());
        let context = dir.join("context");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&context)?;
        std::fs::write(context.join(CONTAINERFILE), &build.source.containerfile)?;
        for (file, text) in &build.source.files {
            // Names were checked: plain, no directories.
            std::fs::write(context.join(file), text)?;
        }
        self.ensure_network().await?;
        let group = format!("build-{}-{}", build.devlab, build.number);
        let cgroup_parent = if self.cgroups.parent_path(&group).is_some() {
            self.cgroups
                .create(&group, &self.cfg.build_limits)
                .map_err(Error::Io)?;
            self.cgroups.parent_path(&group)
        } else {
            None
        };
        let spec = BuildSpec {
            context: context.clone(),
            tag: build.image.clone(),
            labels: vec![
                ("insitu.devlab".to_owned(), build.devlab.to_string()),
                (
                    "insitu.build".to_owned(),
                    build_version(&build.version, build.number),
                ),
            ],
            network: self.cfg.build_network.clone(),
            cgroup_parent,
            timeout: self.cfg.build_timeout,
        };
        let outcome = self.podman.build(&spec, log).await;
        let cgroups = self.cgroups.clone();
        let _ = tokio::task::spawn_blocking(move || {
            cgroups.kill_and_remove(&group);
            cgroups.remove_elsewhere(&group);
        })
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(outcome?)
    }

    /// Makes the build network when it is missing (a bridge of podman's
    /// own; see docs/security.md for what it reaches).
    async fn ensure_network(&self) -> Result<(), Error> {
        let net = self.cfg.build_network.as_str();
        if matches!(net, "none" | "podman") {
            return Ok(());
        }
        if self
            .podman
            .output("network exists", &["network", "exists", net])
            .await
            .is_ok()
        {
            return Ok(());
        }
        let created = self
            .podman
            .output("network create", &["network", "create", net])
            .await;
        // Another build (or platform) may have made it meanwhile.
        match created {
            Ok(_) => {
                tracing::warn!(
                    network = net,
                    "build network made; see docs/security.md to keep builds from the host's addresses"
                );
                Ok(())
            }
            Err(e) => match self
                .podman
                .output("network exists", &["network", "exists", net])
                .await
            {
                Ok(_) => Ok(()),
                Err(_) => Err(e.into()),
            },
        }
    }

    /// Removes the images of old builds of a datalab: the newest
    /// `keep_builds` successful builds stay, and every build submitted for
    /// publication or published. An image a lab still runs stays too
    /// (podman refuses to remove it) and goes at a later collection.
    pub async fn collect(&self, name: &Name) -> Result<usize, Error> {
        let releases = self.store.releases_of(name.as_str()).await?;
        let held = |n: i64| {
            releases.iter().any(|r| {
                r.number == n && matches!(r.state, ReleaseState::Submitted | ReleaseState::Approved)
            })
        };
        let mut kept = 0;
        let mut removed = 0;
        for mut b in self.store.builds_of(name.as_str()).await? {
            if b.state != BuildState::Succeeded || !b.image_kept {
                continue;
            }
            if held(b.number) {
                continue;
            }
            if kept < self.cfg.keep_builds {
                kept += 1;
                continue;
            }
            match self.podman.remove_image(&b.image).await {
                Ok(()) => {
                    b.image_kept = false;
                    self.store.update_build(&b).await?;
                    removed += 1;
                    tracing::info!(image = %b.image, "old build's image removed");
                }
                Err(e) => {
                    tracing::info!(image = %b.image, error = %e, "old build's image kept for now")
                }
            }
        }
        Ok(removed)
    }

    /// A datalab's builds, newest first (its developer only).
    pub async fn builds(&self, caller: &Principal, name: &str) -> Result<Vec<BuildRecord>, Error> {
        let record = self.owned(caller, name).await?;
        Ok(self.store.builds_of(record.name.as_str()).await?)
    }

    /// One build (its developer only).
    pub async fn build(
        &self,
        caller: &Principal,
        name: &str,
        number: i64,
    ) -> Result<BuildRecord, Error> {
        let record = self.owned(caller, name).await?;
        self.build_of(&record.name, number).await
    }

    /// Build `number`'s log from byte `offset` on (its developer, and the
    /// moderators reviewing a submission).
    pub async fn log(
        &self,
        caller: &Principal,
        name: &str,
        number: i64,
        offset: u64,
    ) -> Result<LogChunk, Error> {
        let record = match self.owned(caller, name).await {
            Ok(r) => r,
            Err(Error::NotDevlabOwner(n)) if self.reviews(caller, &n, number).await? => self
                .store
                .devlab(n.as_str())
                .await?
                .ok_or_else(|| Error::DevlabNotFound(name.to_owned()))?,
            Err(e) => return Err(e),
        };
        let build = self.build_of(&record.name, number).await?;
        let path = self.log_path(&record.name, number);
        let bytes = tokio::task::spawn_blocking(move || read_from(&path, offset)).await??;
        Ok(LogChunk {
            next: offset + bytes.len() as u64,
            ended: !build.state.is_active(),
            bytes,
        })
    }

    /// Whether `caller` is a moderator and build `number` was submitted.
    async fn reviews(&self, caller: &Principal, name: &Name, number: i64) -> Result<bool, Error> {
        if !caller.role.allows(insitu_domain::Role::Moderator) {
            return Ok(false);
        }
        Ok(self
            .store
            .releases_of(name.as_str())
            .await?
            .iter()
            .any(|r| r.number == number))
    }

    /// After a restart: builds that were queued or running ended with the
    /// platform (podman's build was its child).
    pub async fn recover(&self) -> Result<(), Error> {
        for mut b in self
            .store
            .builds_in_states(&[BuildState::Queued, BuildState::Running])
            .await?
        {
            b.state = BuildState::Failed;
            b.error = Some("the platform restarted during the build; build again".to_owned());
            b.finished_at = Some(now());
            append(
                &self.log_path(&b.devlab, b.number),
                "Build ended with status FAILED: the platform restarted during the build.\n",
            );
            self.store.update_build(&b).await?;
        }
        Ok(())
    }
}

/// Appends a line of ours to a build's log.
fn append(log: &Path, text: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(log = %log.display(), error = %e, "cannot write a build's log");
    }
}

/// At most [`CHUNK`] bytes of a file from `offset`.
fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(CHUNK);
    f.take(CHUNK as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The line that says why a build failed: podman's last `Error:` line
/// (which step failed), after the failing step's own last error line where
/// it wrote one (pip's `ERROR:`, apt's `E:`); else the last line of output.
fn error_line(log: &Path) -> Option<String> {
    let lines = insitu_launcher::process::log_tail(log, 400);
    let podman = lines
        .iter()
        .rposition(|l| l.starts_with("Error:") || l.starts_with("error:"));
    let line = match podman {
        Some(i) => {
            let tool = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.starts_with("STEP "))
                .find(|l| {
                    let l = l.trim_start();
                    ["ERROR:", "ERROR ", "E: ", "error:", "fatal:", "Error:"]
                        .iter()
                        .any(|p| l.starts_with(p))
                });
            match tool {
                Some(t) => format!("{} ({})", t.trim(), lines[i]),
                None => lines[i].clone(),
            }
        }
        None => lines.iter().rev().find(|l| !l.trim().is_empty())?.clone(),
    };
    Some(line.chars().take(1000).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_build_names_podmans_error_line() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("0.log");
        std::fs::write(
            &log,
            "STEP 2/2: RUN false\nError: building at STEP \"RUN false\": while running runtime: exit status 1\n",
        )
        .unwrap();
        assert_eq!(
            error_line(&log).unwrap(),
            "Error: building at STEP \"RUN false\": while running runtime: exit status 1"
        );
        std::fs::write(
            &log,
            "STEP 2/2: RUN pip install nosuch\nCollecting\nERROR: No matching distribution found for nosuch\n\
             Error: building at STEP \"RUN pip install nosuch\": while running runtime: exit status 1\n",
        )
        .unwrap();
        assert_eq!(
            error_line(&log).unwrap(),
            "ERROR: No matching distribution found for nosuch (Error: building at STEP \"RUN pip install nosuch\": while running runtime: exit status 1)"
        );
        std::fs::write(&log, "something odd\n\n").unwrap();
        assert_eq!(error_line(&log).unwrap(), "something odd");
        assert_eq!(read_from(&log, 10).unwrap(), b"odd\n\n");
        assert!(read_from(&d.path().join("none"), 0).unwrap().is_empty());
    }
}
