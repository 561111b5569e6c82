//! Job orders between the user and the engine. A user names files as their
//! labs see them: in their workspace (`/home/user/...`), in the team
//! workspaces of the teams they are an accepted member of
//! (`/home/user/team_workspaces/<team>/...`) and in the data volumes
//! (`/media/data/<volume>/...`, or through the home's links,
//! `/home/user/data/<volume>/...`). Before a run the platform checks
//! the job order against the pipeline's inputs, and turns every File and
//! Directory into its place on the host, links resolved and staying inside
//! the workspace or volume it names (the engine checks again, reading only
//! under those roots). After a run, outputs are named where the user finds
//! them: in the workspace, under `runs/<run>/`.

use std::path::{Component, Path, PathBuf};

use insitu_domain::VolumeSpec;
use insitu_launcher::TeamWorkspace;
use insitu_launcher::home::{DATA, TEAM_WORKSPACES};
use serde_json::{Map, Value};

use crate::labs::WORKSPACE_PATH;
use crate::pipelines::described::{Process, kind_of};

/// Where a user's inputs may come from, on the host.
#[derive(Debug, Clone)]
pub struct Places {
    /// The user's workspace (labs see it at [`WORKSPACE_PATH`]).
    pub workspace: PathBuf,
    /// The data volumes whose audience admits the user.
    pub volumes: Vec<VolumeSpec>,
    /// The workspaces of the teams the user is an accepted member of.
    pub teams: Vec<TeamWorkspace>,
}

/// A job order for the engine: files at their host locations, and the
/// directories it reads (the engine's allowed roots).
#[derive(Debug, Clone, PartialEq)]
pub struct HostJob {
    pub job: Value,
    pub roots: Vec<PathBuf>,
}

/// Checks `job` against the inputs of `p`: an object naming only inputs
/// of the pipeline, every required one given (or defaulted), each of its
/// type. The message says which input and why.
pub fn check(p: &Process, job: &Value) -> Result<(), String> {
    let Value::Object(given) = job else {
        return Err(format!(
            "the job order must be an object of the pipeline's inputs, not {}",
            kind_of(job)
        ));
    };
    let names: Vec<&str> = p.inputs.iter().map(|i| i.id.as_str()).collect();
    if let Some(unknown) = given.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(format!(
            "the pipeline has no input {unknown:?}; its inputs are {}",
            names.join(", ")
        ));
    }
    for input in &p.inputs {
        match given.get(&input.id) {
            None | Some(Value::Null) if input.default.is_some() || input.ty.is_optional() => {}
            None | Some(Value::Null) => {
                return Err(format!(
                    "input {:?} ({}) is missing",
                    input.id,
                    input.ty.display()
                ));
            }
            Some(v) => input
                .ty
                .check(v)
                .map_err(|e| format!("input {:?}: {e}", input.id))?,
        }
    }
    Ok(())
}

/// The job order with every File and Directory at its place on the host
/// (see the module).
pub fn to_host(job: &Value, places: &Places) -> Result<HostJob, String> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut job = job.clone();
    translate(&mut job, places, &mut roots, 0)?;
    Ok(HostJob { job, roots })
}

fn translate(
    v: &mut Value,
    places: &Places,
    roots: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Err("the job order is nested too deeply".into());
    }
    match v {
        Value::Array(items) => {
            for item in items {
                translate(item, places, roots, depth + 1)?;
            }
        }
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_owned);
            if matches!(class.as_deref(), Some("File" | "Directory")) {
                place(m, places, roots)?;
            }
            for (_, item) in m.iter_mut() {
                translate(item, places, roots, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Puts one File or Directory at its host location.
fn place(
    m: &mut Map<String, Value>,
    places: &Places,
    roots: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let named = match (m.get("path"), m.get("location")) {
        (Some(Value::String(p)), _) => Some(p.clone()),
        (None, Some(Value::String(l))) => Some(match l.strip_prefix("file://") {
            Some(p) => p.to_owned(),
            None if l.contains("://") => {
                return Err(format!(
                    "{l:?}: inputs come from your workspace or the data volumes (file paths), not from the network"
                ));
            }
            None => l.clone(),
        }),
        (None, None) => None,
        _ => return Err("a File's path and location are strings".into()),
    };
    let Some(named) = named else {
        // A literal: a File's `contents` or a Directory's `listing`.
        return Ok(());
    };
    let (root, host) = host_path(&named, places)?;
    if !roots.contains(&root) {
        roots.push(root);
    }
    if !m.contains_key("basename")
        && let Some(base) = Path::new(&named).file_name().and_then(|b| b.to_str())
    {
        m.insert("basename".into(), Value::String(base.to_owned()));
    }
    m.remove("path");
    m.insert(
        "location".into(),
        Value::String(format!("file://{}", host.display())),
    );
    Ok(())
}

/// The host path of `named` (as labs see it) and the root it lies in:
/// absolute and plain, in the workspace or a volume, existing, and inside
/// it once links are resolved.
fn host_path(named: &str, places: &Places) -> Result<(PathBuf, PathBuf), String> {
    let path = Path::new(named);
    let plain = named.starts_with('/')
        && named.len() <= 4096
        && !named.contains('\0')
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "{named:?}: name inputs by absolute paths as your labs see them, without '.' or '..'"
        ));
    }
    let home = Path::new(WORKSPACE_PATH);
    let (source, rest) = if let Ok(in_teams) = path.strip_prefix(home.join(TEAM_WORKSPACES)) {
        // The home's team workspaces are mounts of the team's directory,
        // for its accepted members only.
        let mut parts = in_teams.components();
        let team = parts.next().and_then(|c| c.as_os_str().to_str());
        let Some(t) = team.and_then(|t| places.teams.iter().find(|w| w.name == t)) else {
            return Err(format!(
                "{named:?}: {} is not the workspace of a team you are a member of",
                home.join(TEAM_WORKSPACES)
                    .join(team.unwrap_or(""))
                    .display()
            ));
        };
        (t.source.clone(), parts.as_path().to_path_buf())
    } else if let Ok(in_data) = path.strip_prefix(home.join(DATA)) {
        // The home's `data/<volume>` links lead to the volumes.
        let mut parts = in_data.components();
        let volume = parts.next().and_then(|c| c.as_os_str().to_str());
        let Some(v) = volume.and_then(|n| places.volumes.iter().find(|v| v.name.as_str() == n))
        else {
            return Err(format!(
                "{named:?}: there is no data volume {:?}",
                volume.unwrap_or("")
            ));
        };
        (v.source.clone(), parts.as_path().to_path_buf())
    } else if let Ok(rest) = path.strip_prefix(WORKSPACE_PATH) {
        (places.workspace.clone(), rest.to_path_buf())
    } else if let Some((v, rest)) = places
        .volumes
        .iter()
        .find_map(|v| path.strip_prefix(&v.mount_path).ok().map(|r| (v, r)))
    {
        (v.source.clone(), rest.to_path_buf())
    } else {
        return Err(format!(
            "{named:?} is neither in your workspace ({WORKSPACE_PATH}), nor in a team workspace of yours ({WORKSPACE_PATH}/{TEAM_WORKSPACES}/<team>), nor in a data volume (/media/data/<volume>)"
        ));
    };
    let root = source
        .canonicalize()
        .map_err(|_| format!("{named:?} does not exist"))?;
    let host = source
        .join(&rest)
        .canonicalize()
        .map_err(|_| format!("{named:?} does not exist"))?;
    if !host.starts_with(&root) {
        return Err(format!(
            "{named:?} leads outside its workspace or volume through a link"
        ));
    }
    Ok((root, host))
}

/// The engine's output object with every File and Directory named where
/// the user finds it once published: `out` (the engine's output
/// directory) becomes `seen` (`/home/user/runs/<run>` in labs).
pub fn to_user(outputs: &mut Value, out: &Path, seen: &Path) {
    match outputs {
        Value::Array(items) => {
            for item in items {
                to_user(item, out, seen);
            }
        }
        Value::Object(m) => {
            let class = m.get("class").and_then(Value::as_str).map(str::to_owned);
            if matches!(class.as_deref(), Some("File" | "Directory")) {
                let host = m
                    .get("path")
                    .and_then(Value::as_str)
                    .map(PathBuf::from)
                    .or_else(|| {
                        m.get("location")
                            .and_then(Value::as_str)
                            .and_then(|l| l.strip_prefix("file://"))
                            .map(PathBuf::from)
                    });
                if let Some(rest) = host.as_deref().and_then(|h| h.strip_prefix(out).ok()) {
                    let user = seen.join(rest);
                    m.insert("path".into(), Value::String(user.display().to_string()));
                    m.insert(
                        "location".into(),
                        Value::String(format!("file://{}", user.display())),
                    );
                }
                m.remove("dirname");
            }
            for (_, item) in m.iter_mut() {
                to_user(item, out, seen);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::described::Process;
    use serde_json::json;

    fn places(root: &Path) -> Places {
        std::fs::create_dir_all(root.join("ws/sub")).unwrap();
        std::fs::create_dir_all(root.join("vol/fields")).unwrap();
        std::fs::write(root.join("ws/sub/a.txt"), "a").unwrap();
        std::fs::write(root.join("vol/fields/m31.fits"), "x").unwrap();
        std::fs::write(root.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(root.join("secret.txt"), root.join("ws/escape.txt")).unwrap();
        let volume = VolumeSpec::from_config(insitu_domain::volume::VolumeConfig {
            name: "deep-fields".into(),
            title: "Deep fields".into(),
            description: String::new(),
            source: root.join("vol"),
            mount_path: None,
            zone: None,
            metadata: Default::default(),
            visible_to: None,
        })
        .unwrap();
        std::fs::create_dir_all(root.join("optics/bench")).unwrap();
        std::fs::write(root.join("optics/bench/psf.fits"), "p").unwrap();
        std::fs::create_dir_all(root.join("outsiders")).unwrap();
        std::fs::write(root.join("outsiders/plan.txt"), "o").unwrap();
        Places {
            workspace: root.join("ws"),
            volumes: vec![volume],
            teams: vec![TeamWorkspace {
                name: "optics".into(),
                source: root.join("optics"),
            }],
        }
    }

    #[test]
    fn paths_as_labs_see_them_become_host_locations() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let p = places(&root);
        let job = json!({
            "images": [{"class": "File", "path": "/media/data/deep-fields/fields/m31.fits"}],
            "notes": {"class": "File", "location": "file:///home/user/sub/a.txt"},
            "dir": {"class": "Directory", "path": "/home/user/sub"},
            "literal": {"class": "File", "contents": "hello", "basename": "h.txt"},
            "n": 3
        });
        let host = to_host(&job, &p).unwrap();
        assert_eq!(
            host.job["images"][0]["location"],
            format!("file://{}/vol/fields/m31.fits", root.display())
        );
        assert!(host.job["images"][0].get("path").is_none());
        assert_eq!(host.job["images"][0]["basename"], "m31.fits");
        assert_eq!(
            host.job["dir"]["location"],
            format!("file://{}/ws/sub", root.display())
        );
        assert_eq!(host.job["literal"]["contents"], "hello");
        assert_eq!(host.job["n"], 3);
        let mut roots = host.roots.clone();
        roots.sort();
        assert_eq!(roots, [root.join("vol"), root.join("ws")]);
    }

    #[test]
    fn team_workspaces_and_the_home_s_volume_links_are_places_too() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let p = places(&root);
        let job = json!({
            "psf": {"class": "File", "path": "/home/user/team_workspaces/optics/bench/psf.fits"},
            "image": {"class": "File", "path": "/home/user/data/deep-fields/fields/m31.fits"},
            "bench": {"class": "Directory", "location": "file:///home/user/team_workspaces/optics"}
        });
        let host = to_host(&job, &p).unwrap();
        assert_eq!(
            host.job["psf"]["location"],
            format!("file://{}/optics/bench/psf.fits", root.display())
        );
        assert_eq!(
            host.job["image"]["location"],
            format!("file://{}/vol/fields/m31.fits", root.display())
        );
        assert_eq!(
            host.job["bench"]["location"],
            format!("file://{}/optics", root.display())
        );
        let mut roots = host.roots.clone();
        roots.sort();
        assert_eq!(roots, [root.join("optics"), root.join("vol")]);
        for (path, why) in [
            // Not a team of theirs, even where such a directory exists.
            (
                "/home/user/team_workspaces/outsiders/plan.txt",
                "not the workspace of a team you are a member of",
            ),
            (
                "/home/user/team_workspaces/../optics/bench/psf.fits",
                "without '.' or '..'",
            ),
            ("/home/user/team_workspaces", "not the workspace of a team"),
            ("/home/user/data/other/x", "no data volume \"other\""),
            ("/home/user/data", "no data volume \"\""),
        ] {
            let err = to_host(&json!({"f": {"class": "File", "path": path}}), &p).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        // A link in a team workspace leads nowhere else.
        std::os::unix::fs::symlink(root.join("secret.txt"), root.join("optics/escape")).unwrap();
        let err = to_host(
            &json!({"f": {"class": "File", "path": "/home/user/team_workspaces/optics/escape"}}),
            &p,
        )
        .unwrap_err();
        assert!(err.contains("through a link"), "{err}");
    }

    #[test]
    fn paths_outside_the_user_s_places_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let p = places(&root);
        for (path, why) in [
            (root.join("secret.txt").display().to_string(), "neither"),
            ("/home/user/escape.txt".into(), "link"),
            ("/home/user/../../etc/passwd".into(), "without '.' or '..'"),
            (
                "/media/data/deep-fields/missing.fits".into(),
                "does not exist",
            ),
            ("/media/data/other/x".into(), "neither"),
            ("relative.txt".into(), "absolute"),
            ("/etc/passwd".into(), "neither"),
        ] {
            let err = to_host(&json!({"f": {"class": "File", "path": path}}), &p).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        let err = to_host(
            &json!({"f": {"class": "File", "location": "https://example.org/x"}}),
            &p,
        )
        .unwrap_err();
        assert!(err.contains("not from the network"), "{err}");
        // Nested: secondary files and listings are places too.
        let nested = json!({"f": {"class": "File", "path": "/home/user/sub/a.txt",
            "secondaryFiles": [{"class": "File", "path": "/etc/shadow"}]}});
        assert!(to_host(&nested, &p).is_err());
    }

    #[test]
    fn jobs_are_checked_against_the_inputs() {
        let p = Process::from_description(&json!({
            "class": "Workflow",
            "inputs": [
                {"id": "images", "type": {"type": "array", "items": "File"}},
                {"id": "threshold", "type": "double", "default": 5.0},
                {"id": "label", "type": ["null", "string"]}
            ],
            "outputs": [], "steps": []
        }));
        let file = json!({"class": "File", "path": "/home/user/a.fits"});
        assert!(check(&p, &json!({"images": [file]})).is_ok());
        assert_eq!(
            check(&p, &json!({})).unwrap_err(),
            "input \"images\" (File[]) is missing"
        );
        assert_eq!(
            check(&p, &json!({"images": [file], "threshold": "high"})).unwrap_err(),
            "input \"threshold\": expected double, got a string"
        );
        assert!(
            check(&p, &json!({"images": [file], "thresold": 3}))
                .unwrap_err()
                .contains("no input \"thresold\"")
        );
        assert!(check(&p, &json!([1])).is_err());
    }

    #[test]
    fn outputs_are_named_in_the_workspace() {
        let mut out = json!({"report": {"class": "File",
            "location": "file:///var/insitu/runs/abc/out/report.json",
            "path": "/var/insitu/runs/abc/out/report.json", "dirname": "/var/insitu/runs/abc/out"}});
        to_user(
            &mut out,
            Path::new("/var/insitu/runs/abc/out"),
            Path::new("/home/user/runs/abc"),
        );
        assert_eq!(out["report"]["path"], "/home/user/runs/abc/report.json");
        assert_eq!(
            out["report"]["location"],
            "file:///home/user/runs/abc/report.json"
        );
        assert!(out["report"].get("dirname").is_none());
    }
}
