//! Workspaces whose size the kernel limits: each workspace is an ext4 file
//! system in a file of its own (an *image*, sparse: it takes on the host
//! only what is written), loop-mounted by the platform (root) at the
//! workspace's directory and owned by the lab user. A write past the
//! image's size fails inside the lab with `ENOSPC`, "No space left on
//! device"; nothing polls.
//!
//! [`Images::probe`] finds out at start whether this host can (root,
//! `mkfs.ext4`, loop devices, `mount`): a trial image is made, mounted
//! and removed. Where it cannot, the platform keeps workspaces as plain
//! directories and says so. [`Images::ensure`] makes a workspace's image
//! on first use (moving an existing directory's files into it), resizes
//! it to its quota while it is not mounted, and mounts it; a mounted
//! workspace is grown at once where the kernel lets the platform resize a
//! mounted file system (`CAP_SYS_RESOURCE`), otherwise once no sandbox
//! holds it any more (the host's mount is let go and made again around
//! the resize). A shrink happens only then too, and only when the files
//! fit. A mount outlives the platform's process (labs keep using it
//! across a restart) and is found again in `/proc/self/mountinfo`.
//!
//! An image is never mounted twice through two loop devices (that would
//! corrupt it): a file still attached to a loop device (its file system
//! mounted somewhere, a sandbox's mount namespace included) is mounted
//! from that device, and is never checked or resized offline.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The smallest image made: ext4 needs room for its own records.
pub const MIN_IMAGE_BYTES: u64 = 16 << 20;

/// Why a workspace's image could not be made, resized or mounted.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },
    #[error(
        "the workspace holds {used} bytes, more than its new size of {size} bytes: it keeps its size until files are removed"
    )]
    DoesNotFit { used: u64, size: u64 },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let what = what.into();
    move |source| StorageError::Io { what, source }
}

/// Runs a program of the host's file system tools; its output is the
/// error's text when it fails.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String, StorageError> {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(io(format!("cannot run {program}")))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    if out.status.success() {
        return Ok(text(&out.stdout));
    }
    // e2fsck: 1 means errors were corrected, which is fine.
    if program == "e2fsck" && out.status.code() == Some(1) {
        return Ok(text(&out.stdout));
    }
    Err(StorageError::Command {
        program: program.to_owned(),
        status: out.status.to_string(),
        output: format!("{} {}", text(&out.stdout), text(&out.stderr))
            .trim()
            .to_owned(),
    })
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// What a workspace's file system reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes the lab user may fill in all (the file system less its own
    /// records).
    pub capacity: u64,
    /// Bytes in use.
    pub used: u64,
    /// Bytes the lab user may still write.
    pub available: u64,
}

/// The file system at `path` as `statvfs` reports it.
pub fn usage(path: &Path) -> std::io::Result<Usage> {
    let st = rustix::fs::statvfs(path)?;
    let block = st.f_frsize;
    Ok(Usage {
        capacity: st.f_blocks.saturating_mul(block),
        used: st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(block),
        available: st.f_bavail.saturating_mul(block),
    })
}

/// What [`Images::ensure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// The image's size now.
    pub size: u64,
    /// The size asked for could not be reached now (the image is mounted
    /// and cannot be resized while it is, or the files do not fit a
    /// smaller one): why.
    pub pending: Option<String>,
    /// The image was made now, from the files of an existing directory.
    pub migrated: bool,
}

/// Workspace images on this host (see the module).
#[derive(Debug, Clone)]
pub struct Images {
    /// Where the image files are kept.
    dir: PathBuf,
}

impl Images {
    /// Whether images work here, tried in `dir` (where they will be kept):
    /// `Ok` with the images, or the reason they do not.
    pub fn probe(dir: &Path) -> Result<Images, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("the platform does not run as root, which mounting needs".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err("this host has no loop devices (/dev/loop-control)".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let images = Images {
            dir: dir.to_owned(),
        };
        let trial = dir.join(".probe.img");
        let at = dir.join(".probe");
        let tried = (|| {
            let _ = unmount(&at);
            let _ = std::fs::remove_file(&trial);
            std::fs::create_dir_all(&at).map_err(io("cannot make the trial mount point"))?;
            make_image(&trial, MIN_IMAGE_BYTES, (0, 0))?;
            images.mount(&trial, &at)?;
            let u = usage(&at).map_err(io("cannot read the trial file system"))?;
            unmount(&at)?;
            Ok::<u64, StorageError>(u.capacity)
        })();
        let _ = std::fs::remove_file(&trial);
        let _ = std::fs::remove_dir(&at);
        match tried {
            Ok(capacity) if capacity > 0 => Ok(images),
            Ok(_) => Err("a trial image showed no room".into()),
            Err(e) => Err(format!("a trial image could not be made and mounted: {e}")),
        }
    }

    /// Where the images are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image file of the workspace called `name` (a plain file name).
    pub fn image_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.img"))
    }

    /// Makes `mount_point` the mounted image `image` of `size` bytes (at
    /// least [`MIN_IMAGE_BYTES`]), owned by `owner` (see the module). A
    /// directory already at `mount_point` with files in it (a workspace
    /// from before images) has them moved into the new image, which is
    /// made larger than `size` if they need it.
    pub fn ensure(
        &self,
        image: &Path,
        mount_point: &Path,
        size: u64,
        owner: (u32, u32),
    ) -> Result<Ensured, StorageError> {
        let size = round_size(size);
        let partial = with_suffix(image, ".partial");
        let old = old_files_dir(mount_point);
        if is_mount_point(mount_point) {
            let now = image_size(image)?;
            if size == now {
                return Ok(Ensured {
                    size: now,
                    pending: None,
                    migrated: false,
                });
            }
            if size > now && grow_mounted(image, mount_point, size).is_ok() {
                return Ok(self.ensured(image, None, false));
            }
            // Resized offline: the host's mount goes first, which the
            // kernel refuses while a process of the host uses it.
            // Sandboxes keep their own view of it (and its loop device
            // attached, which leaves the resize for later); it is mounted
            // again below, from that device.
            if unmount(mount_point).is_err() {
                return Ok(Ensured {
                    size: now,
                    pending: Some(
                        "the workspace is resized to its new quota once no lab uses it".to_owned(),
                    ),
                    migrated: false,
                });
            }
        }
        // What an interrupted migration left.
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(io("cannot remove an unfinished image"))?;
        }
        if old.exists() && image.exists() {
            std::fs::remove_dir_all(&old).map_err(io("cannot remove a migrated directory"))?;
        }
        std::fs::create_dir_all(mount_point).map_err(io("cannot make the workspace"))?;
        let mut migrated = false;
        let mut pending = None;
        if image.exists() {
            pending = self.resize_unmounted(image, size)?;
        } else {
            let held = has_entries(mount_point);
            if held {
                let needed = round_size(tree_bytes(mount_point).saturating_mul(5) / 4)
                    .saturating_add(MIN_IMAGE_BYTES);
                make_image(&partial, size.max(needed), owner)?;
                self.copy_into(&partial, mount_point)?;
                migrated = true;
            } else {
                make_image(&partial, size, owner)?;
            }
            std::fs::rename(&partial, image).map_err(io("cannot keep the new image"))?;
            if held {
                // The files are in the image: the directory's copy goes.
                std::fs::rename(mount_point, &old).map_err(io("cannot set the old files aside"))?;
                std::fs::create_dir(mount_point).map_err(io("cannot make the workspace"))?;
                std::fs::remove_dir_all(&old).map_err(io("cannot remove the old files"))?;
            }
        }
        self.mount(image, mount_point)?;
        std::os::unix::fs::chown(mount_point, Some(owner.0), Some(owner.1))
            .map_err(io("cannot hand the workspace to the lab user"))?;
        Ok(self.ensured(image, pending, migrated))
    }

    fn ensured(&self, image: &Path, pending: Option<String>, migrated: bool) -> Ensured {
        Ensured {
            size: image_size(image).unwrap_or(0),
            pending,
            migrated,
        }
    }

    /// Resizes an image that is not mounted to `size`; a shrink the files
    /// do not fit is left for later, saying why.
    fn resize_unmounted(&self, image: &Path, size: u64) -> Result<Option<String>, StorageError> {
        let now = fs_size(image)?;
        if now == size && image_size(image)? == size {
            return Ok(None);
        }
        if attached_loop(image).is_some() {
            return Ok(Some(
                "the workspace is still in use somewhere: it is resized once no lab uses it"
                    .to_owned(),
            ));
        }
        run("e2fsck", &[os("-f"), os("-p"), image.as_os_str()])?;
        if size >= now {
            set_len(image, size)?;
            run("resize2fs", &[image.as_os_str()])?;
            return Ok(None);
        }
        let kib = format!("{}K", size / 1024);
        match run("resize2fs", &[image.as_os_str(), os(&kib)]) {
            Ok(_) => {
                set_len(image, size)?;
                Ok(None)
            }
            // resize2fs refuses a size smaller than what the files take.
            Err(e) => Ok(Some(format!(
                "the workspace keeps its size of {now} bytes until files are removed ({e})"
            ))),
        }
    }

    /// Copies the files of `dir` into the image (owners, modes, links
    /// kept as they are, never followed).
    fn copy_into(&self, image: &Path, dir: &Path) -> Result<(), StorageError> {
        let at = with_suffix(image, ".mnt");
        std::fs::create_dir_all(&at).map_err(io("cannot make a mount point"))?;
        self.mount(image, &at)?;
        let mut from = dir.as_os_str().to_owned();
        from.push("/.");
        let copied = run(
            "cp",
            &[
                os("-a"),
                os("--no-dereference"),
                from.as_os_str(),
                at.as_os_str(),
            ],
        );
        let unmounted = unmount(&at);
        let _ = std::fs::remove_dir(&at);
        copied?;
        unmounted
    }

    /// Mounts `image` at `at`, from the loop device it is attached to
    /// already if it is (so one file system is never mounted twice).
    pub fn mount(&self, image: &Path, at: &Path) -> Result<(), StorageError> {
        let opts = "nodev,nosuid,noatime";
        match attached_loop(image) {
            Some(dev) => run(
                "mount",
                &[
                    os("-t"),
                    os("ext4"),
                    os("-o"),
                    os(opts),
                    dev.as_os_str(),
                    at.as_os_str(),
                ],
            )?,
            None => run(
                "mount",
                &[
                    os("-t"),
                    os("ext4"),
                    os("-o"),
                    os(&format!("loop,{opts}")),
                    image.as_os_str(),
                    at.as_os_str(),
                ],
            )?,
        };
        Ok(())
    }
}

/// Unmounts the workspace at `at`; fails (`target is busy`) while a
/// process of the host has a file open there. Sandboxes holding it in
/// their own mount namespace keep their view; its loop device goes with
/// the last of them.
pub fn unmount(at: &Path) -> Result<(), StorageError> {
    run("umount", &[at.as_os_str()]).map(|_| ())
}

/// Detaches the workspace at `at` at once, even while it is in use (the
/// file system goes when its last user lets go): for tests cleaning up
/// and for a platform removing what it made.
pub fn unmount_lazily(at: &Path) -> Result<(), StorageError> {
    run("umount", &[os("-l"), at.as_os_str()]).map(|_| ())
}

fn make_image(image: &Path, size: u64, owner: (u32, u32)) -> Result<(), StorageError> {
    let file = std::fs::File::create(image).map_err(io("cannot make the image file"))?;
    file.set_len(size)
        .map_err(io("cannot size the image file"))?;
    drop(file);
    let root_owner = format!(
        "root_owner={}:{},lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        owner.0, owner.1
    );
    // No blocks kept for root: the lab user may fill all of it.
    run(
        "mkfs.ext4",
        &[
            os("-q"),
            os("-F"),
            os("-m"),
            os("0"),
            os("-E"),
            os(&root_owner),
            image.as_os_str(),
        ],
    )?;
    Ok(())
}

fn set_len(image: &Path, size: u64) -> Result<(), StorageError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .and_then(|f| f.set_len(size))
        .map_err(io("cannot resize the image file"))
}

/// Grows a mounted image's file system to `size`, where the kernel allows.
fn grow_mounted(image: &Path, at: &Path, size: u64) -> Result<(), StorageError> {
    let dev = mounted_device(at).ok_or_else(|| StorageError::Command {
        program: "mountinfo".into(),
        status: "not found".into(),
        output: format!("{} is not mounted from a loop device", at.display()),
    })?;
    let before = image_size(image)?;
    set_len(image, size)?;
    let grown = run("losetup", &[os("-c"), dev.as_os_str()])
        .and_then(|_| run("resize2fs", &[dev.as_os_str()]));
    if grown.is_err() {
        // The file system kept its size: so does its file.
        let _ = set_len(image, before);
        let _ = run("losetup", &[os("-c"), dev.as_os_str()]);
    }
    grown.map(|_| ())
}

/// The size of the file system in an image that is not mounted.
fn fs_size(image: &Path) -> Result<u64, StorageError> {
    let out = run("dumpe2fs", &[os("-h"), image.as_os_str()])?;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match (field("Block count:"), field("Block size:")) {
        (Some(count), Some(size)) => Ok(count.saturating_mul(size)),
        _ => Err(StorageError::Command {
            program: "dumpe2fs".into(),
            status: "unreadable".into(),
            output: "no block count or size in its output".into(),
        }),
    }
}

/// The size of an image file.
pub fn image_size(image: &Path) -> Result<u64, StorageError> {
    std::fs::metadata(image)
        .map(|m| m.len())
        .map_err(io("cannot read the image's size"))
}

/// Sizes are whole MiB, at least [`MIN_IMAGE_BYTES`].
fn round_size(size: u64) -> u64 {
    let mib = 1u64 << 20;
    size.max(MIN_IMAGE_BYTES).div_ceil(mib).saturating_mul(mib)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where a workspace directory's files are set aside once copied into its
/// new image, until they are removed.
fn old_files_dir(mount_point: &Path) -> PathBuf {
    let name = mount_point
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    mount_point.with_file_name(format!(".old-{name}"))
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_some())
}

/// Bytes the files under `dir` take, links not followed.
fn tree_bytes(dir: &Path) -> u64 {
    let mut bytes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            }
            bytes = bytes.saturating_add(meta.len().max(4096));
        }
    }
    bytes
}

/// The loop device `image` is attached to, if any.
pub fn attached_loop(image: &Path) -> Option<PathBuf> {
    let real = image.canonicalize().ok()?;
    let devices = std::fs::read_dir("/sys/block").ok()?;
    devices.flatten().find_map(|d| {
        let name = d.file_name().into_string().ok()?;
        if !name.starts_with("loop") {
            return None;
        }
        let backing = std::fs::read_to_string(d.path().join("loop/backing_file")).ok()?;
        let backing = backing.trim_end_matches('\n');
        (Path::new(backing) == real).then(|| PathBuf::from(format!("/dev/{name}")))
    })
}

/// Mount points in this process's mount namespace, with their sources.
pub fn mounts() -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            let source = right.split_whitespace().nth(1)?;
            Some((PathBuf::from(unescape(point)), unescape(source)))
        })
        .collect()
}

/// Whether something is mounted at `path`.
pub fn is_mount_point(path: &Path) -> bool {
    mounted_device(path).is_some()
}

/// The device mounted at `path` (the last mount there wins).
fn mounted_device(path: &Path) -> Option<PathBuf> {
    mounts()
        .into_iter()
        .rev()
        .find(|(p, _)| p == path)
        .map(|(_, source)| PathBuf::from(source))
}

/// The mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            let v = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_mebibytes_and_never_tiny() {
        assert_eq!(round_size(0), MIN_IMAGE_BYTES);
        assert_eq!(round_size((64 << 20) + 1), 65 << 20);
        assert_eq!(round_size(1 << 30), 1 << 30);
    }

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape("/srv/a\\040b"), "/srv/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
