//! The container executor: a CommandLineTool with `DockerRequirement` runs
//! in an OCI container with podman. The image is made available first
//! (present locally, else loaded from `dockerLoad`, built from
//! `dockerFile`, imported from `dockerImport` or pulled from `dockerPull`);
//! the job's directories and inputs are mounted at the paths the command
//! line names (the output directory at `dockerOutputDirectory` when the
//! tool sets one), inputs read-only; the network is off unless the tool
//! asks for `NetworkAccess`; the image's entrypoint and `PATH` apply.

use crate::access::Access;
use crate::error::{CwlError, Result};
use crate::executor::{
    CommandSpec, ContainerRun, ExecFuture, Executor, resolve_program, step_binds,
};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How an image may be made for a job.
#[derive(Debug)]
pub struct Build<'a> {
    /// Whether the job has `NetworkAccess`.
    pub network: bool,
    /// Whether the run is confined: builds then get the network only with
    /// `NetworkAccess`.
    pub confined: bool,
    /// Where image files (`dockerLoad`, `dockerImport`) may be read.
    pub access: &'a Access,
}

impl Build<'_> {
    /// Whether a build or import must not reach the network.
    fn offline(&self) -> bool {
        self.confined && !self.network
    }
}

/// The name of the image `req` names: `dockerImageId`, else `dockerPull`,
/// else one made from the `dockerFile` text.
pub fn image_name(req: &Value) -> Result<String> {
    let field = |k: &str| req.get(k).and_then(Value::as_str);
    match (
        field("dockerImageId"),
        field("dockerPull"),
        field("dockerFile"),
    ) {
        (Some(id), _, _) => Ok(id.to_string()),
        (None, Some(p), _) => Ok(p.to_string()),
        (None, None, Some(f)) => Ok(format!("localhost/insitu-cwl-build:{}", short_hash(f))),
        _ => Err(CwlError::Validation(
            "DockerRequirement names no image (dockerPull, dockerImageId or dockerFile)".into(),
        )),
    }
}

/// A podman that works on this machine.
#[derive(Debug)]
pub struct Podman {
    podman: PathBuf,
    /// The user and group containers run as, when not the engine's.
    run_as: Option<(u32, u32)>,
    /// Images known to be present (checked or made in this run).
    ready: tokio::sync::Mutex<HashSet<String>>,
    /// Distinguishes the container names of one run.
    counter: AtomicUsize,
}

impl Podman {
    /// Find podman (`$INSITU_PODMAN`, else on `PATH`) and check that it can
    /// talk to its storage; the error says why not.
    pub async fn probe() -> std::result::Result<Podman, String> {
        let podman = match std::env::var_os("INSITU_PODMAN") {
            Some(p) => PathBuf::from(p),
            None => {
                let path = std::env::var("PATH").unwrap_or_default();
                let p = resolve_program("podman", Some(&path));
                if !p.is_absolute() {
                    return Err("podman is not installed".into());
                }
                p
            }
        };
        let out = tokio::process::Command::new(&podman)
            .args(["version", "--format", "{{.Client.Version}}"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", podman.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} does not work here: {}",
                podman.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Podman {
            podman,
            run_as: None,
            ready: tokio::sync::Mutex::new(HashSet::new()),
            counter: AtomicUsize::new(0),
        })
    }

    async fn podman(&self, args: &[&str]) -> Result<std::process::Output> {
        tokio::process::Command::new(&self.podman)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| CwlError::Execution(format!("cannot run podman: {e}")))
    }

    async fn podman_ok(&self, what: &str, args: &[&str]) -> Result<()> {
        let out = self.podman(args).await?;
        if out.status.success() {
            return Ok(());
        }
        Err(CwlError::Execution(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }

    /// The user and group containers run as, when not the engine's.
    pub fn running_as(mut self, run_as: Option<(u32, u32)>) -> Podman {
        self.run_as = run_as;
        self
    }

    /// Make image `name` (see [`image_name`]) that `DockerRequirement` `req`
    /// describes available. `base` is the directory of the document (for
    /// a relative `dockerLoad`), `scratch` a directory for a `dockerFile`
    /// build.
    pub async fn ensure_image(
        &self,
        req: &Value,
        name: &str,
        base: &Path,
        scratch: &Path,
        build: &Build<'_>,
    ) -> Result<()> {
        let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
        let mut ready = self.ready.lock().await;
        if ready.contains(name) {
            return Ok(());
        }
        let present = self
            .podman(&["image", "exists", name])
            .await?
            .status
            .success();
        if !present {
            if let Some(load) = field("dockerLoad") {
                let path = crate::files::loc_to_path(&crate::loader::resolve_location(&load, base));
                build.access.check("dockerLoad", &path)?;
                let path = path.display().to_string();
                self.podman_ok(
                    &format!("cannot load image {name} from {path}"),
                    &["load", "-q", "-i", &path],
                )
                .await?;
            } else if let Some(text) = field("dockerFile") {
                std::fs::create_dir_all(scratch)?;
                std::fs::write(scratch.join("Dockerfile"), text)?;
                let dir = scratch.display().to_string();
                let mut args = vec!["build", "-q", "-t", name];
                if build.offline() {
                    args.push("--network=none");
                }
                args.push(&dir);
                self.podman_ok(
                    &format!("cannot build image {name} from its dockerFile"),
                    &args,
                )
                .await?;
            } else if let Some(url) = field("dockerImport") {
                let src = crate::files::loc_to_path(&crate::loader::resolve_location(&url, base));
                let src = if src.exists() {
                    build.access.check("dockerImport", &src)?;
                    src.display().to_string()
                } else if build.offline() {
                    return Err(CwlError::Execution(format!(
                        "dockerImport {url}: fetching an image needs NetworkAccess in this run"
                    )));
                } else {
                    url.clone()
                };
                self.podman_ok(
                    &format!("cannot import image {name} from {url}"),
                    &["import", "-q", &src, name],
                )
                .await?;
            } else if let Some(p) = field("dockerPull") {
                self.podman_ok(
                    &format!("image {p} is not on this machine and cannot be pulled"),
                    &["pull", "-q", &p],
                )
                .await?;
            }
            if !self
                .podman(&["image", "exists", name])
                .await?
                .status
                .success()
            {
                return Err(CwlError::Execution(format!(
                    "image {name} is not available after loading it"
                )));
            }
        }
        ready.insert(name.to_string());
        Ok(())
    }

    /// The arguments after `podman` that run `spec` in `c` as `name`.
    pub fn args(&self, spec: &CommandSpec, c: &ContainerRun, name: &str) -> Result<Vec<String>> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--pull=never".into(),
            format!("--name={name}"),
            "--log-driver=none".into(),
            format!("--workdir={}", c.outdir.display()),
        ];
        // With NetworkAccess, podman's default network (its own namespace
        // with outbound access); without, none at all.
        if !spec.network {
            a.push("--network=none".into());
        }
        if spec.stdin.is_some() {
            a.push("--interactive".into());
        }
        if let Some((uid, gid)) = self.run_as {
            a.extend([
                format!("--user={uid}:{gid}"),
                "--cap-drop=all".into(),
                "--security-opt=no-new-privileges".into(),
            ]);
        }
        let inside_out = |p: &Path| -> PathBuf {
            match p.strip_prefix(&spec.cwd) {
                Ok(rest) if rest.as_os_str().is_empty() => c.outdir.clone(),
                Ok(rest) => c.outdir.join(rest),
                Err(_) => p.to_path_buf(),
            }
        };
        let mut mounts: Vec<(PathBuf, PathBuf, bool)> = step_binds(spec)
            .binds
            .into_iter()
            .map(|b| {
                let inside = inside_out(&b.path);
                (b.path, inside, b.writable)
            })
            .collect();
        mounts.extend(c.mounts.iter().cloned());
        // Podman's mount syntax separates fields with `,`: a source with
        // one is reached through a link of a plain name (podman resolves
        // it), a target with one is given in the `:` syntax instead.
        let links = spec.tmpdir.with_extension("links");
        for (i, (host, inside, writable)) in mounts.into_iter().enumerate() {
            let mut source = host.display().to_string();
            if source.contains(',') || source.contains('=') {
                std::fs::create_dir_all(&links)?;
                let link = links.join(i.to_string());
                std::os::unix::fs::symlink(&host, &link)?;
                source = link.display().to_string();
            }
            let target = inside.display().to_string();
            let ro = if writable { "" } else { ",readonly" };
            if !target.contains(',') {
                a.push(format!(
                    "--mount=type=bind,source={source},destination={target}{ro}"
                ));
            } else if !target.contains(':') && !source.contains(':') {
                let mode = if writable { "rw" } else { "ro" };
                a.push(format!("--volume={source}:{target}:{mode}"));
            } else {
                return Err(CwlError::Execution(format!(
                    "cannot mount {target} in a container: its name holds both ',' and ':'"
                )));
            }
        }
        for (k, v) in &spec.env {
            a.push(format!("--env={k}={v}"));
        }
        a.push(c.image.clone());
        a.extend(spec.argv.iter().cloned());
        Ok(a)
    }
}

impl Executor for Podman {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            let Some(c) = &spec.container else {
                return Err(CwlError::Execution(
                    "the container executor got a job without an image".into(),
                ));
            };
            let name = format!(
                "insitu-cwl-{}-{}",
                std::process::id(),
                self.counter.fetch_add(1, Ordering::SeqCst)
            );
            let mut cmd = tokio::process::Command::new(&self.podman);
            cmd.args(self.args(spec, c, &name)?).current_dir(&spec.cwd);
            let r = crate::executor::run_to_end(cmd, spec).await;
            if r.is_err() {
                // A killed podman leaves its container behind.
                let _ = self.podman(&["rm", "--force", "--time=0", &name]).await;
            }
            r
        })
    }
}

/// A short stable hash of a text (names of images built from a dockerFile).
fn short_hash(text: &str) -> String {
    use sha1::{Digest, Sha1};
    let d = Sha1::digest(text.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_follow_the_output_directory_and_keep_inputs_read_only() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        for p in ["out", "tmp", "data", "abs"] {
            std::fs::create_dir_all(root.join(p)).unwrap();
        }
        let spec = CommandSpec {
            argv: vec!["touch".into(), "/other/thing".into()],
            cwd: root.join("out"),
            tmpdir: root.join("tmp"),
            read_only_paths: vec![root.join("data")],
            env: [("HOME".to_string(), "/other".to_string())].into(),
            container: Some(ContainerRun {
                image: "docker.io/debian:stable-slim".into(),
                outdir: "/other".into(),
                mounts: vec![(root.join("abs/x"), "/in/x".into(), false)],
            }),
            ..CommandSpec::default()
        };
        let p = Podman {
            podman: "podman".into(),
            run_as: None,
            ready: Default::default(),
            counter: AtomicUsize::new(0),
        };
        let args = p
            .args(&spec, spec.container.as_ref().unwrap(), "n")
            .unwrap();
        let has = |s: String| args.contains(&s);
        let mount = |src: &Path, dst: &str, ro: &str| {
            format!(
                "--mount=type=bind,source={},destination={dst}{ro}",
                src.display()
            )
        };
        assert!(has(mount(&root.join("out"), "/other", "")));
        let tmp = root.join("tmp").display().to_string();
        assert!(has(mount(&root.join("tmp"), &tmp, "")));
        let data = root.join("data").display().to_string();
        assert!(has(mount(&root.join("data"), &data, ",readonly")));
        assert!(has(mount(&root.join("abs/x"), "/in/x", ",readonly")));
        assert!(has("--network=none".into()));
        assert!(has("--workdir=/other".into()));
        assert!(has("--env=HOME=/other".into()));
        let image = args
            .iter()
            .position(|a| a == "docker.io/debian:stable-slim")
            .unwrap();
        assert_eq!(args[image + 1..], ["touch", "/other/thing"]);
    }
}
