//! Workspaces and their quotas: each user's workspace (their labs' home,
//! holding `my_workspace`) and each team's (`team_workspaces/<team>`).
//!
//! Where the host can (see [`insitu_launcher::storage`]), a workspace is
//! a file system image of its own, sized to its holder's quota and
//! mounted at the workspace's directory before a lab or a run uses it, so
//! a write past the quota fails in the lab with "No space left on device"
//! (`ENOSPC`): the kernel limits it, nothing polls. The images are kept
//! in the data directory's `images/`, which no lab sees. A mount outlives
//! the platform's process, so labs keep their workspaces across a restart
//! and the next start finds them mounted. Where the host cannot (not
//! root, no loop devices) or `quotas.workspace_images` is off, workspaces
//! are plain directories: their use is shown against the quota, with the
//! same warning, and the platform says that it does not limit them.
//!
//! A quota is the configured default (`[quotas]`) unless an administrator
//! set another for the user or the team; a new quota applies at once to
//! a mounted workspace that grows (a shrink waits until no lab uses it).
//! A user over quota still launches labs, to clean up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use insitu_domain::{Name, UserId};
use insitu_launcher::storage::{self, Images};
use insitu_store::{QuotaHolder, Store};

use crate::config::{ConfigError, QuotasConfig};
use crate::error::Error;

/// The share of a quota at which the platform warns.
pub const WARN_FRACTION: f64 = 0.8;

/// The smallest workspace quota an administrator may set.
pub const MIN_QUOTA_BYTES: u64 = storage::MIN_IMAGE_BYTES;

/// The largest (1 PiB).
pub const MAX_QUOTA_BYTES: u64 = 1 << 50;

/// The size of the image that holds a quota's worth of files: the quota
/// and room for the file system's own records (its journal and inode
/// tables take up to a fifth of a small image, a few percent of a large
/// one), in whole MiB.
pub fn image_bytes(quota: u64) -> u64 {
    let size = quota
        .saturating_add(quota / 16)
        .saturating_add(8 << 20)
        .max(MIN_QUOTA_BYTES);
    size.div_ceil(1 << 20).saturating_mul(1 << 20)
}

/// A workspace: a user's or a team's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    User { id: UserId, username: String },
    Team(Name),
}

impl Holder {
    fn quota_holder(&self) -> QuotaHolder {
        match self {
            Holder::User { id, .. } => QuotaHolder::User(id.clone()),
            Holder::Team(name) => QuotaHolder::Team(name.clone()),
        }
    }

    /// The image's file name (without `.img`): never the same for a user
    /// and a team of one name.
    fn image_name(&self) -> String {
        match self {
            Holder::User { username, .. } => format!("user-{username}"),
            Holder::Team(name) => format!("team-{name}"),
        }
    }
}

/// A workspace's quota and what it holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceUsage {
    /// The holder's quota, in bytes.
    pub quota_bytes: u64,
    /// Whether an administrator set it (otherwise: the default).
    pub quota_set: bool,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Files in it.
    pub files: u64,
    /// Bytes the files may fill in all, as the workspace's file system
    /// says (about the quota: see [`image_bytes`]); none while it is a
    /// plain directory or not mounted.
    pub capacity_bytes: Option<u64>,
    /// Whether the kernel limits the workspace to its quota.
    pub enforced: bool,
    /// Why it does not, when it does not.
    pub not_enforced: Option<String>,
    /// A new quota not reached yet (a shrink waits until no lab uses the
    /// workspace): why.
    pub pending: Option<String>,
}

impl WorkspaceUsage {
    /// Bytes the use is measured against: what the file system holds
    /// where the kernel limits it, the quota otherwise.
    fn limit(&self) -> u64 {
        self.capacity_bytes.unwrap_or(self.quota_bytes).max(1)
    }

    /// Use as a share of the limit, in percent: 100 or more once full
    /// (a file system refuses its last blocks to new writes, which it
    /// keeps for its own records, so full comes just before the limit).
    pub fn used_percent(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let p = self.used_bytes as f64 / self.limit() as f64 * 100.0;
        let p = (p * 10.0).round() / 10.0;
        if self.full() { p.max(100.0) } else { p }
    }

    /// Whether nothing more can be written (or, unlimited, the quota is
    /// passed): within a mebibyte of the limit.
    pub fn full(&self) -> bool {
        self.used_bytes.saturating_add(1 << 20) >= self.limit()
    }

    /// What the user reads from 80 % on; none below.
    pub fn warning(&self) -> Option<String> {
        let p = self.used_percent();
        if self.full() {
            Some(if self.enforced {
                format!(
                    "the workspace is full ({p} % of its quota): writes in it fail with \"No space left on device\" until files are removed"
                )
            } else {
                format!("the workspace is over its quota ({p} %): remove files")
            })
        } else if p >= WARN_FRACTION * 100.0 {
            Some(format!(
                "the workspace is at {p} % of its quota: remove files before it is full"
            ))
        } else {
            None
        }
    }
}

/// The workspaces of this platform (see the module).
pub struct Workspaces {
    store: Store,
    data_dir: PathBuf,
    run_as: (u32, u32),
    /// The default quotas: a user's, a team's.
    defaults: (u64, u64),
    /// The images, or why workspaces are plain directories.
    images: Result<Images, String>,
    /// One change of images at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Workspaces {
    /// Reads the defaults and finds out (trying) whether this host can
    /// keep workspaces in images; says so in the log when it cannot.
    pub fn new(
        store: Store,
        data_dir: &Path,
        run_as: (u32, u32),
        cfg: &QuotasConfig,
    ) -> Result<Arc<Workspaces>, ConfigError> {
        let defaults = cfg.workspace_bytes()?;
        let images = if cfg.workspace_images {
            Images::probe(&data_dir.join("images"))
        } else {
            Err("quotas.workspace_images is off".to_owned())
        };
        if let Ok(images) = &images {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) =
                std::fs::set_permissions(images.dir(), std::fs::Permissions::from_mode(0o700))
            {
                tracing::warn!(error = %e, "cannot keep the workspace images to the platform");
            }
        }
        match &images {
            Ok(_) => tracing::info!("workspaces are file system images: the kernel limits them"),
            Err(why) => tracing::warn!(
                reason = %why,
                "workspaces are plain directories: their quotas are shown but not enforced"
            ),
        }
        Ok(Arc::new(Workspaces {
            store,
            data_dir: data_dir.to_owned(),
            run_as,
            defaults,
            images,
            lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Why the kernel does not limit workspaces here; none where it does.
    pub fn not_enforced(&self) -> Option<&str> {
        self.images.as_ref().err().map(String::as_str)
    }

    /// The host directory of a workspace (a mount point where images are).
    pub fn dir(&self, holder: &Holder) -> PathBuf {
        match holder {
            Holder::User { username, .. } => self.data_dir.join("workspaces").join(username),
            Holder::Team(name) => self.data_dir.join("teams").join(name.as_str()),
        }
    }

    /// The holder's quota in bytes, and whether an administrator set it.
    pub async fn quota(&self, holder: &Holder) -> Result<(u64, bool), Error> {
        let set = self.store.workspace_quota(&holder.quota_holder()).await?;
        let default = match holder {
            Holder::User { .. } => self.defaults.0,
            Holder::Team(_) => self.defaults.1,
        };
        Ok(set.map_or((default, false), |b| (b, true)))
    }

    /// Makes the workspace ready for a lab or a run: its directory, owned
    /// by the lab user, and where images work, its image mounted there at
    /// its quota's size (made on first use, from the files already in the
    /// directory). What is pending is logged, never an error: a full or
    /// over-quota workspace still launches.
    pub async fn ready(&self, holder: &Holder) -> Result<PathBuf, Error> {
        let dir = self.dir(holder);
        let (quota, _) = self.quota(holder).await?;
        let _held = self.lock.lock().await;
        let images = self.images.clone();
        let image = images
            .as_ref()
            .ok()
            .map(|i| i.image_of(&holder.image_name()));
        let run_as = self.run_as;
        let at = dir.clone();
        let ensured = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            std::fs::create_dir_all(&at).map_err(Error::WorkspaceDir)?;
            match (images, image) {
                (Ok(images), Some(image)) => images
                    .ensure(&image, &at, image_bytes(quota), run_as)
                    .map(Some)
                    .map_err(|e| Error::WorkspaceStorage(e.to_string())),
                _ => {
                    std::os::unix::fs::chown(&at, Some(run_as.0), Some(run_as.1))
                        .map_err(Error::WorkspaceDir)?;
                    Ok(None)
                }
            }
        })
        .await??;
        if let Some(e) = ensured {
            if e.migrated {
                tracing::info!(workspace = %dir.display(), "a workspace's files moved into its new image");
            }
            if let Some(why) = &e.pending {
                tracing::info!(workspace = %dir.display(), reason = %why, "workspace not resized yet");
            }
        }
        Ok(dir)
    }

    /// The workspace's quota and use.
    pub async fn usage(&self, holder: &Holder) -> Result<WorkspaceUsage, Error> {
        let (quota_bytes, quota_set) = self.quota(holder).await?;
        let dir = self.dir(holder);
        let images = self.images.clone();
        let image = images
            .as_ref()
            .ok()
            .map(|i| i.image_of(&holder.image_name()));
        let measured = tokio::task::spawn_blocking(move || {
            let (files, bytes) = crate::volumes::count_files(&dir);
            let mounted = storage::is_mount_point(&dir);
            let fs = mounted.then(|| storage::usage(&dir).ok()).flatten();
            let image_size = image.and_then(|i| storage::image_size(&i).ok());
            (files, bytes, fs, image_size)
        })
        .await?;
        let (files, bytes, fs, image_size) = measured;
        let enforced = self.images.is_ok();
        let target = image_bytes(quota_bytes);
        let pending = match (fs, image_size) {
            (Some(_), Some(size)) if size < target => {
                Some("the workspace grows to its new quota once no lab uses it".to_owned())
            }
            (Some(_), Some(size)) if size > target => {
                Some("the workspace shrinks to its new quota once no lab uses it".to_owned())
            }
            _ => None,
        };
        Ok(WorkspaceUsage {
            quota_bytes,
            quota_set,
            used_bytes: fs.map_or(bytes, |u| u.used),
            files,
            // What the lab user can fill: the file system's own reserve
            // (kept for its writes in flight) is not theirs.
            capacity_bytes: fs.map(|u| u.used.saturating_add(u.available)),
            enforced,
            not_enforced: self.images.as_ref().err().cloned(),
            pending,
        })
    }

    /// Sets the holder's quota (`None`: back to the default) and applies
    /// it now where it can: a mounted workspace grows at once.
    pub async fn set_quota(
        &self,
        holder: &Holder,
        bytes: Option<u64>,
    ) -> Result<WorkspaceUsage, Error> {
        if let Some(b) = bytes
            && !(MIN_QUOTA_BYTES..=MAX_QUOTA_BYTES).contains(&b)
        {
            return Err(Error::InvalidQuota {
                bytes: b,
                min: MIN_QUOTA_BYTES,
                max: MAX_QUOTA_BYTES,
            });
        }
        self.store
            .set_workspace_quota(&holder.quota_holder(), bytes, crate::clock::now())
            .await?;
        let dir = self.dir(holder);
        let in_use = {
            let d = dir.clone();
            tokio::task::spawn_blocking(move || storage::is_mount_point(&d)).await?
        };
        if self.images.is_ok() && in_use {
            self.ready(holder).await?;
        }
        self.usage(holder).await
    }
}
