//! Putting a run's outputs in its user's workspace, and packing its
//! provenance crate for download.
//!
//! The engine writes outputs into the run's directory, which only the
//! platform sees. They are copied into the workspace (`runs/<run>/`) by a
//! sandbox like a lab's, as the labs' unprivileged user, seeing only that
//! user's workspace (at `/home/user`) and the outputs (read-only): a link
//! the user planted in their workspace can lead nowhere else, and the
//! files belong to the user like everything their labs make.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use insitu_launcher::{ExitStatus, SandboxProcess, SandboxSpec, VolumeMount};

/// Where the outputs appear inside the copying sandbox.
const OUTPUTS_IN_SANDBOX: &str = "/media/run-outputs";

/// The copy, run by `sh -c` with the run's id as `$1`.
const COPY: &str = r#"set -e
mkdir -p /home/user/runs
mkdir /home/user/runs/"$1"
cp -R /media/run-outputs/. /home/user/runs/"$1"/
"#;

/// What publishing needs of the platform.
pub struct Publisher<'a> {
    pub bwrap: &'a Path,
    pub run_as: (u32, u32),
    /// Host paths the sandbox must not see (the data directory).
    pub hidden: &'a [PathBuf],
}

/// Why outputs could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot hand the outputs to the workspace's user: {0}")]
    Owner(std::io::Error),
    #[error("cannot start the copy: {0}")]
    Start(#[from] insitu_launcher::LaunchError),
    #[error("the copy failed ({code}): {tail}")]
    Copy { code: String, tail: String },
    #[error("the copy took more than {0} s")]
    Timeout(u64),
}

impl Publisher<'_> {
    /// Copies everything under `outputs` into `workspace`'s `runs/<id>/`
    /// (which must not exist yet); `log` gets the copy's output.
    pub async fn publish(
        &self,
        id: &str,
        outputs: &Path,
        workspace: &Path,
        log: &Path,
    ) -> Result<(), PublishError> {
        let (uid, gid) = self.run_as;
        let dir = outputs.to_path_buf();
        tokio::task::spawn_blocking(move || hand_over(&dir, uid, gid))
            .await
            .map_err(|e| PublishError::Owner(std::io::Error::other(e)))?
            .map_err(PublishError::Owner)?;
        let spec = SandboxSpec {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                COPY.into(),
                "publish".into(),
                id.to_owned(),
            ],
            workspace: workspace.to_path_buf(),
            volumes: vec![VolumeMount {
                source: outputs.to_path_buf(),
                target: PathBuf::from(OUTPUTS_IN_SANDBOX),
            }],
            hidden: self.hidden.to_vec(),
            share_network: false,
            run_as: Some(self.run_as),
            ..SandboxSpec::default()
        };
        let mut copy = SandboxProcess::start(self.bwrap, &spec, log)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            match copy.status() {
                ExitStatus::Exited(Some(0)) => return Ok(()),
                ExitStatus::Exited(code) => {
                    return Err(PublishError::Copy {
                        code: code.map_or("killed".into(), |c| format!("exit code {c}")),
                        tail: copy.log_tail(5).join(" | "),
                    });
                }
                ExitStatus::Running if tokio::time::Instant::now() > deadline => {
                    copy.stop(Duration::from_secs(1)).await;
                    return Err(PublishError::Timeout(600));
                }
                ExitStatus::Running => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

/// Gives `dir` and everything below it (links themselves, never what
/// they lead to) to `uid:gid`, so the unprivileged copy can read it.
fn hand_over(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))?;
        if e.file_type()?.is_dir() {
            hand_over(&e.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Packs the directory `crate_dir` into a zip file at `zip_path` (written
/// under another name, then renamed), its entries under `top/`. Links
/// and anything but regular files and directories are left out.
pub fn zip_dir(crate_dir: &Path, top: &str, zip_path: &Path) -> std::io::Result<()> {
    let tmp = zip_path.with_extension("zip.tmp");
    let file = std::fs::File::create(&tmp)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(crate_dir.join(&rel))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let kind = e.file_type()?;
            let name = rel.join(e.file_name());
            let inside = format!("{top}/{}", name.display());
            if kind.is_dir() {
                zip.add_directory(format!("{inside}/"), options)
                    .map_err(std::io::Error::other)?;
                stack.push(name);
            } else if kind.is_file() {
                zip.start_file(inside, options)
                    .map_err(std::io::Error::other)?;
                let mut f = std::fs::File::open(e.path())?;
                std::io::copy(&mut f, &mut zip)?;
            }
        }
    }
    let mut file = zip.finish().map_err(std::io::Error::other)?;
    file.flush()?;
    std::fs::rename(&tmp, zip_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crate_is_zipped_without_its_links() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("crate");
        std::fs::create_dir_all(c.join("data/abc")).unwrap();
        std::fs::write(c.join("ro-crate-metadata.json"), "{}").unwrap();
        std::fs::write(c.join("data/abc/out.txt"), "result").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", c.join("data/passwd")).unwrap();
        let zip_path = d.path().join("run.zip");
        zip_dir(&c, "run-x", &zip_path).unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        let mut names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "run-x/data/",
                "run-x/data/abc/",
                "run-x/data/abc/out.txt",
                "run-x/ro-crate-metadata.json"
            ]
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut z.by_name("run-x/data/abc/out.txt").unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "result");
    }
}
