//! What a lab's home holds, as users see it in JupyterLab's file browser
//! and in desktop tools' file dialogues:
//!
//! | path in the home | what it is |
//! |---|---|
//! | `my_workspace/` | the user's own files, read-write |
//! | `team_workspaces/<team>/` | each team workspace of the lab, read-write |
//! | `data/<volume>` | a link to each data volume mounted (read-only) at its mount path |
//! | dot-files (`.jupyter`, `.samp`, …) | the tools' settings, kept with the user's files |
//!
//! The home is the user's workspace (bound at [`crate::HOME_PATH`]), so
//! everything in it but `data/` and `team_workspaces/` persists across
//! launches; those two are a sandbox's own read-only directories holding
//! the links and the team workspaces' mounts (see
//! [`crate::SandboxSpec::team_workspaces`]). [`prepare`] makes a
//! workspace ready for that layout, as the platform (root) before every
//! launch: the directories are made owned by the lab user, and a
//! workspace from before the layout has its files moved into
//! `my_workspace/` once (dot-files stay at the top, where tools expect
//! them). A sandbox, a container or a pipeline step that binds the same
//! workspace and the same mounts shows the same home.
//!
//! The workspace is written by the user's labs, so nothing in it is
//! trusted: every step works on directory handles opened without
//! following links, and renames stay inside the workspace.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// The user's own files, in the home.
pub const MY_WORKSPACE: &str = "my_workspace";
/// The team workspaces' directory, in the home.
pub const TEAM_WORKSPACES: &str = "team_workspaces";
/// The links to the data volumes, in the home.
pub const DATA: &str = "data";
/// What `e2fsck` keeps at the top of a workspace that is a file system
/// image of its own (see [`crate::storage`]): it stays there.
pub const LOST_AND_FOUND: &str = "lost+found";

/// What [`prepare`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Entries moved from the top of the workspace into `my_workspace/`
    /// (a workspace made before the layout).
    pub moved: Vec<String>,
}

fn open_dir(dir: &impl std::os::fd::AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// What `name` in `dir` is, links not followed; `None` when missing.
fn kind(dir: &impl std::os::fd::AsFd, name: &str) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes directory `name` in `dir`, owned by `owner`; an existing one is
/// handed to `owner` too.
fn owned_dir(dir: &impl std::os::fd::AsFd, name: &str, owner: (u32, u32)) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    // Opened without following a link: whatever stands there now is the
    // directory that gets the owner, never a place a link points to.
    let fd = open_dir(dir, name)?;
    std::os::unix::fs::fchown(&fd, Some(owner.0), Some(owner.1))?;
    Ok(fd)
}

/// Whether `name` in `dir` is an empty directory (a mount point the
/// layout made earlier).
fn empty_dir(dir: &impl std::os::fd::AsFd, root: &Path, name: &str) -> bool {
    matches!(kind(dir, name), Ok(Some(FileType::Directory)))
        && std::fs::read_dir(root.join(name)).is_ok_and(|mut rd| rd.next().is_none())
}

/// Readies the workspace `root` (a host directory owned by the lab user)
/// for the layout: `my_workspace/`, and the mount points `data/` and
/// `team_workspaces/`, all owned by `owner`. When `my_workspace` is
/// missing (a workspace from before the layout, or one whose user deleted
/// it), the entries at the top of the workspace other than dot-files move
/// into it. Anything standing where a mount point must be that is not a
/// directory (a link, a file) moves into `my_workspace/` too, under a
/// name of its own; a `my_workspace` that is not a directory is renamed
/// `my_workspace.moved` beside it.
pub fn prepare(root: &Path, owner: (u32, u32)) -> io::Result<Prepared> {
    let top = rustix::fs::open(
        root,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut prepared = Prepared::default();
    let fresh = match kind(&top, MY_WORKSPACE)? {
        None => true,
        Some(FileType::Directory) => false,
        Some(_) => {
            // A link or a file the user put there: kept beside, renamed.
            let kept = free_name(&top, "my_workspace.moved")?;
            rustix::fs::renameat(&top, MY_WORKSPACE, &top, kept.as_str())?;
            prepared.moved.push(MY_WORKSPACE.to_owned());
            false
        }
    };
    let mine = owned_dir(&top, MY_WORKSPACE, owner)?;
    if fresh {
        let mut names: Vec<String> = std::fs::read_dir(root)?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && n != MY_WORKSPACE && n != LOST_AND_FOUND)
            .collect();
        names.sort();
        for name in names {
            if (name == DATA || name == TEAM_WORKSPACES) && empty_dir(&top, root, &name) {
                continue;
            }
            move_into(&top, &mine, &name, &name)?;
            prepared.moved.push(name);
        }
    }
    for mount_point in [DATA, TEAM_WORKSPACES] {
        match kind(&top, mount_point)? {
            None | Some(FileType::Directory) => {}
            Some(_) => {
                let kept = free_name(&mine, mount_point)?;
                move_into(&top, &mine, mount_point, &kept)?;
                prepared.moved.push(mount_point.to_owned());
            }
        }
        owned_dir(&top, mount_point, owner)?;
    }
    Ok(prepared)
}

fn move_into(from: &OwnedFd, to: &OwnedFd, name: &str, new_name: &str) -> io::Result<()> {
    Ok(rustix::fs::renameat(from, name, to, new_name)?)
}

/// `name`, or `name.1`, `name.2`, … : the first not taken in `dir`.
fn free_name(dir: &OwnedFd, name: &str) -> io::Result<String> {
    if kind(dir, name)?.is_none() {
        return Ok(name.to_owned());
    }
    for n in 1..1000 {
        let candidate = format!("{name}.{n}");
        if kind(dir, &candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    Err(io::Error::other(format!(
        "no free name for {name} in my_workspace"
    )))
}

/// The name a data volume's link has in the home's `data/`: the last part
/// of its mount path (`/media/data/gaia` → `gaia`).
pub fn data_link_name(mount_path: &Path) -> Option<&str> {
    let name = mount_path.file_name()?.to_str()?;
    is_plain_name(name).then_some(name)
}

/// Whether `name` can be one entry of a directory: not empty, no `/`,
/// not `.` or `..`, no NUL.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> (u32, u32) {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    }

    #[test]
    fn a_fresh_workspace_gets_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = prepare(dir.path(), me()).unwrap();
        assert!(p.moved.is_empty());
        for d in [MY_WORKSPACE, DATA, TEAM_WORKSPACES] {
            assert!(dir.path().join(d).is_dir(), "{d}");
        }
        // Again: nothing moves.
        std::fs::write(dir.path().join("my_workspace/notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("Untitled.ipynb"), "{}").unwrap();
        assert_eq!(prepare(dir.path(), me()).unwrap(), Prepared::default());
        assert!(dir.path().join("Untitled.ipynb").is_file());
    }

    #[test]
    fn an_old_workspace_keeps_its_files_in_my_workspace_and_its_settings_at_the_top() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("analysis.ipynb"), "{}").unwrap();
        std::fs::create_dir_all(root.join("results/run1")).unwrap();
        std::fs::write(root.join("results/run1/out.fits"), "F").unwrap();
        std::fs::create_dir_all(root.join(".jupyter/lab")).unwrap();
        std::fs::write(root.join(".samp"), "hub").unwrap();
        // A user's own folder called data, and a link.
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/table.csv"), "a,b").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        let p = prepare(root, me()).unwrap();
        assert_eq!(p.moved, ["analysis.ipynb", "data", "etc-link", "results"]);
        assert!(root.join("my_workspace/analysis.ipynb").is_file());
        assert!(root.join("my_workspace/results/run1/out.fits").is_file());
        assert_eq!(
            std::fs::read_to_string(root.join("my_workspace/data/table.csv")).unwrap(),
            "a,b"
        );
        assert_eq!(
            std::fs::read_link(root.join("my_workspace/etc-link")).unwrap(),
            Path::new("/etc")
        );
        assert!(root.join(".jupyter/lab").is_dir() && root.join(".samp").is_file());
        assert!(
            root.join("data").is_dir()
                && std::fs::read_dir(root.join("data"))
                    .unwrap()
                    .next()
                    .is_none()
        );
    }

    #[test]
    fn a_link_where_a_mount_point_goes_is_moved_aside_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let root = dir.path();
        prepare(root, me()).unwrap();
        std::fs::remove_dir(root.join("team_workspaces")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("team_workspaces")).unwrap();
        std::fs::remove_dir(root.join("data")).unwrap();
        std::fs::write(root.join("data"), "a file").unwrap();
        let p = prepare(root, me()).unwrap();
        assert_eq!(p.moved, ["data", "team_workspaces"]);
        assert!(root.join("team_workspaces").is_dir());
        assert!(!root.join("team_workspaces").is_symlink());
        assert!(root.join("my_workspace/team_workspaces").is_symlink());
        assert_eq!(
            std::fs::read_to_string(root.join("my_workspace/data")).unwrap(),
            "a file"
        );
        // my_workspace as a link: renamed beside, never followed.
        std::fs::rename(root.join("my_workspace"), root.join("mine")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("my_workspace")).unwrap();
        std::fs::write(root.join("top.txt"), "t").unwrap();
        let p = prepare(root, me()).unwrap();
        assert_eq!(p.moved, ["my_workspace"]);
        assert!(root.join("my_workspace.moved").is_symlink());
        assert!(root.join("my_workspace").is_dir() && !root.join("my_workspace").is_symlink());
        assert!(root.join("top.txt").is_file(), "nothing else moves");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn link_names_are_plain() {
        assert_eq!(data_link_name(Path::new("/media/data/gaia")), Some("gaia"));
        assert_eq!(data_link_name(Path::new("/")), None);
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name("a/b"));
    }
}
