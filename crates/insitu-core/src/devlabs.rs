//! User-developed datalabs: a developer's drafts (made from a template), their
//! OCI builds, sharing, the moderated publishing flow, stars, and export and
//! import between platforms.
//!
//! A draft is a definition (the catalogue's fields and how the lab starts)
//! and a source (a Containerfile and the small files it copies). A build
//! makes an image of it with podman in the background (see [`build`]); its
//! log streams while it runs and stays in the build's history. Who may use
//! which build:
//!
//! - the developer: every successful build (test launches);
//! - users the draft is shared with: the newest successful build that no
//!   moderator rejected, and every published version;
//! - everyone, once the datalab is public: its published versions, each a
//!   build a moderator approved (a version is published once). A build a
//!   moderator rejected is launched by nobody but its developer.
//!
//! The catalogue holds what each user may see ([`refresh`]:
//! [`crate::catalogue::Developed`]); launches resolve a name and version
//! here ([`Devlabs::launchable`]), checked against the store at that moment.
//!
//! [`refresh`]: Devlabs::refresh

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use insitu_domain::devlab::{BaseImages, BuildRules, LICENSES, build_version, is_offered_license};
use insitu_domain::{
    BuildState, DatalabSpec, DevlabDefinition, DevlabSource, Name, ReleaseState, Role, Template,
    UserId, Username,
};
use insitu_launcher::{Cgroups, Limits, Podman};
use insitu_store::{BuildRecord, Decision, DevlabRecord, ReleaseRecord, Store};

use crate::accounts::Principal;
use crate::catalogue::{Datalabs, Developed, DevelopedInfo, Restricted};
use crate::clock::now;
use crate::config::DevlabsConfig;
use crate::error::Error;

pub mod build;
pub mod export;

/// The settings of the service, resolved.
#[derive(Debug, Clone)]
pub struct DevlabsView {
    pub data_dir: PathBuf,
    pub bases: BaseImages,
    pub rules: BuildRules,
    pub repository: String,
    pub build_network: String,
    pub build_limits: Limits,
    pub build_timeout: Duration,
    pub keep_builds: usize,
    pub max_import_bytes: u64,
}

impl DevlabsView {
    pub fn from_config(cfg: &DevlabsConfig, data_dir: PathBuf, max_processes: u64) -> DevlabsView {
        let bases = BaseImages {
            python: cfg.python_image.clone(),
            desktop: cfg.desktop_image.clone(),
        };
        let mut base_images = vec![bases.python.clone(), bases.desktop.clone()];
        base_images.extend(cfg.extra_base_images.iter().cloned());
        DevlabsView {
            data_dir,
            rules: BuildRules { base_images },
            bases,
            repository: cfg.repository.trim_end_matches('/').to_owned(),
            build_network: cfg.build_network.clone(),
            build_limits: Limits {
                memory_bytes: insitu_domain::datalab::parse_bytes(&cfg.build_memory).ok(),
                cpus: Some(cfg.build_cpus),
                max_pids: Some(cfg.build_max_processes.min(max_processes.max(1))),
            },
            build_timeout: Duration::from_secs(
                insitu_domain::datalab::parse_duration(&cfg.build_timeout).unwrap_or(1800),
            ),
            keep_builds: cfg.keep_builds,
            max_import_bytes: insitu_domain::datalab::parse_bytes(&cfg.max_import_size)
                .unwrap_or(4 << 30),
        }
    }
}

/// A new draft, as its developer asks for it.
#[derive(Debug, Clone)]
pub struct NewDevlab {
    pub name: String,
    pub template: String,
    pub title: Option<String>,
    pub author: Option<String>,
}

/// Who sees a datalab besides its developer.
#[derive(Debug, Clone)]
pub struct Audience {
    /// Its published versions are in everyone's catalogue.
    pub public: bool,
    /// Users who see it (and its newest good build) while it is not.
    pub users: Vec<String>,
}

/// A datalab in development with everything its page shows.
#[derive(Debug, Clone)]
pub struct DevlabView {
    pub record: DevlabRecord,
    pub builds: Vec<BuildRecord>,
    pub releases: Vec<ReleaseRecord>,
    pub stars: i64,
    pub launches: i64,
}

impl DevlabView {
    /// DRAFT, SUBMITTED, PUBLISHED or REJECTED, as its page says it.
    pub fn state(&self) -> &'static str {
        if self
            .releases
            .iter()
            .any(|r| r.state == ReleaseState::Approved)
        {
            "published"
        } else if self
            .releases
            .iter()
            .any(|r| r.state == ReleaseState::Submitted)
        {
            "submitted"
        } else if self
            .releases
            .first()
            .is_some_and(|r| r.state == ReleaseState::Rejected)
        {
            "rejected"
        } else {
            "draft"
        }
    }

    /// The publication state of a build, if it was submitted.
    pub fn release_of(&self, number: i64) -> Option<&ReleaseRecord> {
        self.releases.iter().find(|r| r.number == number)
    }
}

/// A submitted build as a moderator reviews it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub release: ReleaseRecord,
    pub build: BuildRecord,
    pub owner: Username,
}

/// The service.
pub struct Devlabs {
    store: Store,
    cfg: DevlabsView,
    podman: Podman,
    cgroups: Cgroups,
    /// Builds that may run at once.
    slots: Arc<tokio::sync::Semaphore>,
}

impl Devlabs {
    pub fn new(
        store: Store,
        cfg: DevlabsView,
        podman: Podman,
        cgroups: Cgroups,
        concurrent_builds: usize,
    ) -> Arc<Devlabs> {
        Arc::new(Devlabs {
            store,
            cfg,
            podman,
            cgroups,
            slots: Arc::new(tokio::sync::Semaphore::new(concurrent_builds.max(1))),
        })
    }

    pub fn config(&self) -> &DevlabsView {
        &self.cfg
    }

    /// The licences a developer chooses from.
    pub fn licenses(&self) -> &'static [(&'static str, &'static str)] {
        &LICENSES
    }

    /// Creates a draft from a template for `caller` (a developer).
    pub async fn create(
        &self,
        datalabs: &Datalabs,
        caller: &Principal,
        new: NewDevlab,
    ) -> Result<DevlabRecord, Error> {
        let name: Name = new
            .name
            .parse()
            .map_err(|reason| Error::InvalidDevlabName {
                name: new.name.clone(),
                reason,
            })?;
        if datalabs.is_shipped(name.as_str()) {
            return Err(Error::DevlabExists(name.to_string()));
        }
        let template: Template = new.template.parse().map_err(Error::InvalidTemplate)?;
        let title = new
            .title
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| name.to_string());
        let author = new
            .author
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| caller.username.to_string());
        let definition = template.definition(&title, &author);
        check_definition(&name, &definition)?;
        let at = now();
        let record = DevlabRecord {
            name,
            owner_id: caller.user_id.clone(),
            owner: caller.username.clone(),
            template,
            definition,
            source: template.source(&self.cfg.bases),
            public: false,
            shared_with: Vec::new(),
            created_at: at,
            updated_at: at,
        };
        if !self.store.create_devlab(&record).await? {
            return Err(Error::DevlabExists(record.name.to_string()));
        }
        tracing::info!(datalab = %record.name, owner = %caller.username, template = %template, "datalab draft created");
        Ok(record)
    }

    /// The developer's datalabs.
    pub async fn mine(&self, caller: &Principal) -> Result<Vec<DevlabView>, Error> {
        let mut out = Vec::new();
        for record in self.store.devlabs_of(&caller.user_id).await? {
            out.push(self.view(record).await?);
        }
        Ok(out)
    }

    async fn view(&self, record: DevlabRecord) -> Result<DevlabView, Error> {
        let builds = self.store.builds_of(record.name.as_str()).await?;
        let releases = self.store.releases_of(record.name.as_str()).await?;
        let stars = self
            .store
            .star_counts()
            .await?
            .get(record.name.as_str())
            .copied()
            .unwrap_or(0);
        let launches = self
            .store
            .launch_counts()
            .await?
            .get(record.name.as_str())
            .copied()
            .unwrap_or(0);
        Ok(DevlabView {
            record,
            builds,
            releases,
            stars,
            launches,
        })
    }

    /// One of the caller's datalabs: another's is not found when the caller
    /// may not see it, and refused when they may.
    pub async fn own(&self, caller: &Principal, name: &str) -> Result<DevlabView, Error> {
        let record = self.owned(caller, name).await?;
        self.view(record).await
    }

    async fn owned(&self, caller: &Principal, name: &str) -> Result<DevlabRecord, Error> {
        let Some(record) = self.store.devlab(name).await? else {
            return Err(Error::DevlabNotFound(name.to_owned()));
        };
        if record.owner_id == caller.user_id {
            return Ok(record);
        }
        if self.sees(caller, &record).await? {
            Err(Error::NotDevlabOwner(record.name))
        } else {
            Err(Error::DevlabNotFound(name.to_owned()))
        }
    }

    /// Whether `caller` sees a datalab (its owner, a named user, or anyone
    /// once a version of a public one is published).
    async fn sees(&self, caller: &Principal, d: &DevlabRecord) -> Result<bool, Error> {
        if d.owner_id == caller.user_id || d.shared_with.contains(&caller.username) {
            return Ok(true);
        }
        Ok(d.public
            && self
                .store
                .releases_of(d.name.as_str())
                .await?
                .iter()
                .any(|r| r.state == ReleaseState::Approved))
    }

    /// Replaces a draft's definition and source (its developer only).
    pub async fn update(
        &self,
        caller: &Principal,
        name: &str,
        definition: DevlabDefinition,
        source: DevlabSource,
    ) -> Result<DevlabRecord, Error> {
        let mut record = self.owned(caller, name).await?;
        check_definition(&record.name, &definition)?;
        let problems = source.check(&self.cfg.rules);
        if !problems.is_empty() {
            return Err(Error::InvalidSource(problems));
        }
        let at = now();
        self.store
            .update_devlab_draft(&record.name, &definition, &source, at)
            .await?;
        record.definition = definition;
        record.source = source;
        record.updated_at = at;
        Ok(record)
    }

    /// Deletes a datalab and the images of its builds (its developer only).
    /// Labs running it keep running.
    pub async fn delete(
        &self,
        datalabs: &Datalabs,
        caller: &Principal,
        name: &str,
    ) -> Result<(), Error> {
        let record = self.owned(caller, name).await?;
        let builds = self.store.builds_of(record.name.as_str()).await?;
        if let Some(b) = builds.iter().find(|b| b.state.is_active()) {
            return Err(Error::BuildRunning {
                datalab: record.name,
                number: b.number,
            });
        }
        self.store.delete_devlab(&record.name).await?;
        for b in builds.iter().filter(|b| b.image_kept) {
            if let Err(e) = self.podman.remove_image(&b.image).await {
                tracing::warn!(image = %b.image, error = %e, "cannot remove a deleted datalab's image");
            }
        }
        self.refresh(datalabs).await?;
        Ok(())
    }

    /// Sets who sees the datalab (its developer only); every named user
    /// must exist.
    pub async fn set_audience(
        &self,
        datalabs: &Datalabs,
        caller: &Principal,
        name: &str,
        audience: Audience,
    ) -> Result<DevlabRecord, Error> {
        let mut record = self.owned(caller, name).await?;
        let mut ids: Vec<UserId> = Vec::new();
        let (mut names, mut unknown) = (Vec::new(), Vec::new());
        for raw in &audience.users {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let found = match raw.parse::<Username>() {
                Ok(u) => self.store.user_by_username(&u).await?,
                Err(_) => None,
            };
            match found {
                Some(u) if u.id == record.owner_id => {}
                Some(u) if !ids.contains(&u.id) => {
                    ids.push(u.id);
                    names.push(u.username);
                }
                Some(_) => {}
                None => unknown.push(raw.to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownUsers(unknown));
        }
        self.store
            .set_devlab_audience(&record.name, audience.public, &ids, now())
            .await?;
        record.public = audience.public;
        names.sort();
        record.shared_with = names;
        self.refresh(datalabs).await?;
        Ok(record)
    }

    /// Submits a successful build for publication (its developer only).
    pub async fn submit(
        &self,
        caller: &Principal,
        name: &str,
        number: i64,
    ) -> Result<ReleaseRecord, Error> {
        let record = self.owned(caller, name).await?;
        let build = self.build_of(&record.name, number).await?;
        if build.state != BuildState::Succeeded {
            return Err(Error::BuildNotReady {
                datalab: record.name,
                number,
                state: build.state,
                action: "submitted",
            });
        }
        if !build.image_kept {
            return Err(Error::ImageRemoved {
                datalab: record.name,
                number,
            });
        }
        let releases = self.store.releases_of(record.name.as_str()).await?;
        if releases
            .iter()
            .any(|r| r.state == ReleaseState::Approved && r.version == build.version)
        {
            return Err(Error::VersionPublished {
                datalab: record.name,
                version: build.version,
            });
        }
        let release = ReleaseRecord {
            devlab: record.name.clone(),
            number,
            version: build.version.clone(),
            state: ReleaseState::Submitted,
            reason: None,
            submitted_by: caller.username.clone(),
            submitted_at: now(),
            decided_by: None,
            decided_at: None,
        };
        if !self.store.insert_release(&release).await? {
            return Err(Error::AlreadySubmitted {
                datalab: record.name,
                number,
            });
        }
        tracing::info!(datalab = %record.name, build = number, "build submitted for publication");
        Ok(release)
    }

    /// The moderators' queue: every build waiting for a decision.
    pub async fn queue(&self) -> Result<Vec<Submission>, Error> {
        let mut out = Vec::new();
        for release in self
            .store
            .releases_in_state(ReleaseState::Submitted)
            .await?
        {
            let (Some(build), Some(d)) = (
                self.store
                    .build(release.devlab.as_str(), release.number)
                    .await?,
                self.store.devlab(release.devlab.as_str()).await?,
            ) else {
                continue;
            };
            out.push(Submission {
                release,
                build,
                owner: d.owner,
            });
        }
        Ok(out)
    }

    /// A moderator's decision on a submitted build: approved (published:
    /// in everyone's catalogue once the datalab is public) or rejected with
    /// a reason its developer reads. Nobody reviews their own datalab.
    pub async fn decide(
        &self,
        datalabs: &Datalabs,
        moderator: &Principal,
        name: &str,
        number: i64,
        approve: bool,
        reason: Option<String>,
    ) -> Result<ReleaseRecord, Error> {
        let not_pending = || Error::NotPending {
            datalab: name.to_owned(),
            number,
        };
        let record = self.store.devlab(name).await?.ok_or_else(not_pending)?;
        if record.owner_id == moderator.user_id {
            return Err(Error::OwnSubmission);
        }
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if !approve && reason.is_none() {
            return Err(Error::ReasonRequired);
        }
        let state = if approve {
            ReleaseState::Approved
        } else {
            ReleaseState::Rejected
        };
        match self
            .store
            .decide_release(
                &record.name,
                number,
                state,
                reason.as_deref(),
                &moderator.username,
                now(),
            )
            .await?
        {
            Decision::Done => {}
            Decision::NotPending => return Err(not_pending()),
            Decision::VersionPublished => {
                let version = self
                    .store
                    .build(name, number)
                    .await?
                    .map(|b| b.version)
                    .unwrap_or_default();
                return Err(Error::VersionPublished {
                    datalab: record.name,
                    version,
                });
            }
        }
        tracing::info!(datalab = %record.name, build = number, decision = %state, moderator = %moderator.username, "publication decided");
        self.refresh(datalabs).await?;
        self.store
            .releases_of(name)
            .await?
            .into_iter()
            .find(|r| r.number == number)
            .ok_or_else(not_pending)
    }

    /// Stars (or unstars) a datalab the caller sees.
    pub async fn star(
        &self,
        datalabs: &Datalabs,
        caller: &Principal,
        name: &str,
        on: bool,
    ) -> Result<(), Error> {
        let Some(record) = self.store.devlab(name).await? else {
            return Err(Error::DatalabNotFound(name.to_owned()));
        };
        if !self.sees(caller, &record).await? {
            return Err(Error::DatalabNotFound(name.to_owned()));
        }
        self.store
            .set_star(&record.name, &caller.user_id, on)
            .await?;
        self.refresh(datalabs).await?;
        Ok(())
    }

    /// The datalabs the caller starred.
    pub async fn starred(&self, caller: &Principal) -> Result<Vec<String>, Error> {
        Ok(self.store.starred_by(&caller.user_id).await?)
    }

    async fn build_of(&self, name: &Name, number: i64) -> Result<BuildRecord, Error> {
        self.store
            .build(name.as_str(), number)
            .await?
            .ok_or_else(|| Error::BuildNotFound {
                datalab: name.to_string(),
                number,
            })
    }

    /// The datalab to launch when `caller` asks for `name` at `version` (a
    /// published version such as `1.2.0`, or a build version such as
    /// `1.2.0-3`; none: the newest the caller may use), or `None` when no
    /// developed datalab has that name.
    pub async fn launchable(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<DatalabSpec>, Error> {
        let Some(record) = self.store.devlab(name).await? else {
            return Ok(None);
        };
        if !self.sees(caller, &record).await? {
            return Err(Error::DatalabNotFound(name.to_owned()));
        }
        let builds = self.store.builds_of(name).await?;
        let releases = self.store.releases_of(name).await?;
        let owner = record.owner_id == caller.user_id;
        let named = record.shared_with.contains(&caller.username);
        let state_of = |n: i64| releases.iter().find(|r| r.number == n).map(|r| r.state);
        let usable = |b: &&BuildRecord| {
            b.state == BuildState::Succeeded
                && b.image_kept
                && match state_of(b.number) {
                    Some(ReleaseState::Approved) => true,
                    Some(ReleaseState::Rejected) => owner,
                    _ => owner || named,
                }
        };
        let not_found = || Error::VersionNotFound {
            datalab: name.to_owned(),
            version: version.unwrap_or("(newest)").to_owned(),
        };
        let chosen = match version {
            Some(v) => {
                // A published version names its approved build; a build
                // version names one build.
                let published = releases
                    .iter()
                    .find(|r| r.state == ReleaseState::Approved && r.version == v)
                    .and_then(|r| builds.iter().find(|b| b.number == r.number));
                published
                    .or_else(|| {
                        builds
                            .iter()
                            .find(|b| build_version(&b.version, b.number) == v)
                    })
                    .filter(usable)
            }
            None if owner || named => builds.iter().find(usable),
            None => releases
                .iter()
                .filter(|r| r.state == ReleaseState::Approved)
                .find_map(|r| builds.iter().find(|b| b.number == r.number))
                .filter(usable),
        };
        let build = chosen.ok_or_else(not_found)?;
        build
            .definition
            .spec(&record.name, Some(&build.image))
            .map(Some)
            .map_err(Error::InvalidDefinition)
    }

    /// Rebuilds what the catalogue holds of developed datalabs: for each,
    /// its newest published version (public ones, for everyone) or its
    /// newest build that named users may use (for them and the owner).
    pub async fn refresh(&self, datalabs: &Datalabs) -> Result<(), Error> {
        let stars = self.store.star_counts().await?;
        let launches = self.store.launch_counts().await?;
        let mut developed = Developed::default();
        for d in self.store.devlabs().await? {
            let builds = self.store.builds_of(d.name.as_str()).await?;
            let releases = self.store.releases_of(d.name.as_str()).await?;
            let published: Vec<(&ReleaseRecord, &BuildRecord)> = releases
                .iter()
                .filter(|r| r.state == ReleaseState::Approved)
                .filter_map(|r| builds.iter().find(|b| b.number == r.number).map(|b| (r, b)))
                .collect();
            let rejected = |n: i64| {
                releases
                    .iter()
                    .any(|r| r.number == n && r.state == ReleaseState::Rejected)
            };
            let shown = if d.public {
                published.first().map(|(_, b)| *b)
            } else {
                builds.iter().find(|b| {
                    b.state == BuildState::Succeeded && b.image_kept && !rejected(b.number)
                })
            };
            let Some(build) = shown else {
                continue;
            };
            let Ok(spec) = build.definition.spec(&d.name, Some(&build.image)) else {
                continue;
            };
            developed.info.insert(
                d.name.to_string(),
                DevelopedInfo {
                    owner: d.owner.clone(),
                    author: build.definition.author.clone(),
                    state: if d.public { "published" } else { "shared" },
                    modified_at: build.finished_at.unwrap_or(build.created_at),
                    stars: stars.get(d.name.as_str()).copied().unwrap_or(0),
                    launches: launches.get(d.name.as_str()).copied().unwrap_or(0),
                    versions: published.iter().map(|(r, _)| r.version.clone()).collect(),
                },
            );
            if d.public {
                developed.public.push(spec);
            } else {
                developed.restricted.push(Restricted {
                    spec,
                    owner: d.owner,
                    users: d.shared_with,
                });
            }
        }
        datalabs.set_developed(developed);
        Ok(())
    }
}

/// A definition's problems as the caller's error: a licence that is not
/// offered on its own, else every problem at once.
fn check_definition(name: &Name, definition: &DevlabDefinition) -> Result<(), Error> {
    if !is_offered_license(&definition.license) {
        return Err(Error::InvalidLicense {
            given: definition.license.clone(),
            offered: LICENSES.iter().map(|(id, _)| *id).collect(),
        });
    }
    definition
        .spec(name, None)
        .map(|_| ())
        .map_err(Error::InvalidDefinition)
}

/// Whether a role may develop datalabs.
pub fn may_develop(role: Role) -> bool {
    role.allows(Role::Developer)
}
