//! Workspace quotas for real: each workspace is an ext4 image on a loop
//! device, mounted before the lab starts. JupyterLab's kernel writes past
//! the quota and gets "No space left on device" from the kernel (this
//! host's kernel has no quota format for ext4, so the image's size is the
//! limit: ENOSPC, not EDQUOT); the API and the CLI report the workspace
//! full, and warn from 80 %; a full workspace still launches; an
//! administrator grows a quota and a running lab writes more at once; a
//! team's workspace has its own quota; the image keeps its data across a
//! platform restart and a remount; and nothing is left attached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::jupyter::{Opened, open};
use crate::labs::{launch, settle};

const MIB: u64 = 1 << 20;

pub(crate) fn images_available() -> bool {
    // The effective user id, from /proc.
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    let ok = root
        && Path::new("/dev/loop-control").exists()
        && Path::new("/usr/bin/bwrap").exists()
        && repo_root().join(".venv/bin/jupyter-lab").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "root, loop devices, bubblewrap and JupyterLab are required but missing"
        );
        eprintln!("skipping: workspace images need root, loop devices, bubblewrap and JupyterLab");
    }
    ok
}

/// A server whose workspaces are images: users get 32 MiB, teams 16 MiB.
pub(crate) async fn spawn_with_images(db: Db) -> TestApp {
    spawn_with(Options {
        db,
        workspace_images: true,
        configure: |c| {
            c.quotas.user_workspace = "32MiB".to_owned();
            c.quotas.team_workspace = "16MiB".to_owned();
        },
        ..Options::default()
    })
    .await
}

/// The loop devices whose image lies under `dir`.
pub(crate) fn loops_under(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|d| {
            let backing = std::fs::read_to_string(d.path().join("loop/backing_file")).ok()?;
            Path::new(backing.trim())
                .starts_with(&dir)
                .then(|| backing.trim().to_owned())
        })
        .collect()
}

/// Waits until nothing under `dir` is attached to a loop device (the
/// sandboxes holding a mount end a moment after the server).
pub(crate) async fn assert_detached(dir: PathBuf) {
    let start = Instant::now();
    loop {
        let left = loops_under(&dir);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "loop devices left attached: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until no user of the server on `data_dir` has a SAMP hub (the
/// platform stops a user's hub a moment after their last lab).
async fn wait_for_no_samp_hub(data_dir: &Path) {
    let start = Instant::now();
    let running = || {
        std::fs::read_dir(data_dir.join("samp"))
            .is_ok_and(|rd| rd.flatten().any(|u| u.path().join("hub.pid").exists()))
    };
    while running() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the SAMP hub is still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn launch_running(app: &TestApp, token: &str, datalab: &str) -> String {
    let (status, lab) = launch(app, token, datalab, &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let lab = settle(app, token, &id).await;
    assert_eq!(lab["state"], "running", "{lab}");
    id
}

async fn stop(app: &TestApp, token: &str, id: &str) {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn workspace(app: &TestApp, token: &str) -> Value {
    let (status, w) = get_json(&plain(), &app.u("/api/v1/me/workspace"), token).await;
    assert_eq!(status, 200, "{w}");
    w
}

/// Writes `mib` MiB into `path` from the lab's kernel: `WROTE`, or the
/// error's number and text.
async fn fill(lab: &Opened, path: &str, mib: u64) -> String {
    let code = format!(
        "import os\n\
         try:\n    \
             with open(os.path.expanduser({path:?}), 'wb') as f:\n        \
                 for _ in range({mib}):\n            \
                     f.write(b'x' * (1 << 20)); f.flush(); os.fsync(f.fileno())\n    \
             print('WROTE')\n\
         except OSError as e:\n    \
             print('ERROR', e.errno, e.strerror)\n"
    );
    let (out, err) = lab.run(&code).await;
    assert_eq!(err, None, "{out}");
    out.trim().to_owned()
}

/// `insitu` as a script runs it, logged in with a token.
async fn cli(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let (url, token) = (app.url.clone(), token.to_owned());
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_insitu"))
            .args(&args)
            .env("INSITU_CONFIG_DIR", &dir)
            .env("INSITU_URL", url)
            .env("INSITU_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn set_quota(app: &TestApp, token: &str, path: &str, bytes: Value) -> (u16, Value) {
    let r = plain()
        .put(app.u(path))
        .bearer_auth(token)
        .json(&json!({ "workspace_bytes": bytes }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn percent(q: &Value) -> f64 {
    q["used_percent"].as_f64().unwrap()
}

async fn a_full_workspace_is_stopped_by_the_kernel_and_reported(db: Db) {
    if !images_available() {
        return;
    }
    let mut app = spawn_with_images(db).await;
    let data_dir = app.config().data_dir.clone();
    let t = app.user_with_role("wendy", "user").await;
    let admin = app.admin_token().await;

    // The workspace is its own file system before the lab starts.
    let id = launch_running(&app, &t, "jupyterlab").await;
    let home = data_dir.join("workspaces/wendy");
    let image = data_dir.join("images/user-wendy.img");
    assert!(insitu_launcher::storage::is_mount_point(&home));
    assert!(
        image.is_file(),
        "the image lives in the hidden data directory"
    );
    let w = workspace(&app, &t).await;
    let q = &w["quota"];
    assert_eq!(q["quota_bytes"], 32 * MIB, "{w}");
    assert_eq!(
        (q["enforced"].as_bool(), q["quota_set"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(q["warning"], Value::Null, "{w}");
    let capacity = q["capacity_bytes"].as_u64().unwrap();
    assert!(
        capacity > 30 * MIB && capacity < 36 * MIB,
        "about the quota: {w}"
    );

    // Past 80 %: warned in the API and the CLI, not full yet.
    let lab = open(&app, "wendy", &id).await;
    let used = q["used_bytes"].as_u64().unwrap();
    let to_85 = (capacity * 85 / 100 - used) / MIB;
    assert_eq!(fill(&lab, "~/my_workspace/big.bin", to_85).await, "WROTE");
    let w = workspace(&app, &t).await;
    let q = &w["quota"];
    assert!(percent(q) >= 80.0 && percent(q) < 100.0, "{w}");
    assert_eq!(q["full"], false, "{w}");
    assert!(
        q["warning"].as_str().unwrap().contains("% of its quota"),
        "{w}"
    );
    let (code, out, err) = cli(&app, &t, &["workspace", "show"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("of 32 MiB"), "{out}");
    assert!(
        err.contains("warning: your workspace: the workspace is at"),
        "{err}"
    );

    // Past the quota: the kernel refuses the write inside the lab.
    let refused = fill(&lab, "~/my_workspace/more.bin", 64).await;
    assert_eq!(refused, "ERROR 28 No space left on device");
    let w = workspace(&app, &t).await;
    let q = &w["quota"];
    assert!(percent(q) >= 100.0, "{w}");
    assert_eq!(q["full"], true, "{w}");
    assert!(
        q["warning"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{w}"
    );
    let (_, _, err) = cli(&app, &t, &["workspace", "show"]).await;
    assert!(err.contains("the workspace is full"), "{err}");
    let r = app.login("wendy", PASSWORD).await;
    let page = r
        .client
        .get(app.u("/my-labs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"workspace-warning\""),
        "the labs page warns"
    );
    assert!(page.contains("You can still launch a lab to clean up"));

    // Full, the user still launches a lab (and is told in the CLI).
    stop(&app, &t, &id).await;
    let id = launch_running(&app, &t, "jupyterlab").await;
    let (code, out, err) = cli(&app, &t, &["labs", "launch", "testapp", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the workspace is full"), "{err}");
    let other: Value = serde_json::from_str(&out).unwrap();
    let other = other["id"].as_str().unwrap().to_owned();
    assert_eq!(settle(&app, &t, &other).await["state"], "running");

    // An administrator grows the quota. This host's kernel lets the
    // platform grow a mounted file system only with CAP_SYS_RESOURCE:
    // without it, the new size is pending until no lab uses the
    // workspace, and the next launch has it.
    let (status, body) = set_quota(
        &app,
        &t,
        "/api/v1/admin/quotas/users/wendy",
        json!(64 * MIB),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = set_quota(
        &app,
        &admin,
        "/api/v1/admin/quotas/users/wendy",
        json!(1024),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_quota"))
    );
    let (status, body) = set_quota(
        &app,
        &admin,
        "/api/v1/admin/quotas/users/nobody",
        json!(null),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("user_not_found"))
    );
    let (code, out, err) = cli(
        &app,
        &admin,
        &[
            "quota",
            "set",
            "--user",
            "wendy",
            "--workspace",
            "64MiB",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let q: Value = serde_json::from_str(&out).unwrap();
    let q = &q["workspace"];
    assert_eq!(
        (q["quota_bytes"].as_u64(), q["quota_set"].as_bool()),
        (Some(64 * MIB), Some(true))
    );
    if q["pending"].is_null() {
        assert!(
            q["capacity_bytes"].as_u64().unwrap() > capacity + 24 * MIB,
            "grown at once: {q}"
        );
    } else {
        assert!(
            q["pending"]
                .as_str()
                .unwrap()
                .contains("once no lab uses it"),
            "{q}"
        );
        assert_eq!(q["full"], true, "{q}");
    }
    stop(&app, &t, &id).await;
    stop(&app, &t, &other).await;
    // No lab uses the workspace once the user's SAMP hub (a sandbox
    // beside their labs, holding the workspace too) has gone with them.
    wait_for_no_samp_hub(&data_dir).await;
    let id = launch_running(&app, &t, "jupyterlab").await;
    let w = workspace(&app, &t).await;
    let q = &w["quota"];
    assert_eq!(q["pending"], Value::Null, "{w}");
    assert!(
        q["capacity_bytes"].as_u64().unwrap() > capacity + 24 * MIB,
        "grown: {w}"
    );
    assert_eq!(
        (q["full"].as_bool(), q["warning"].as_str()),
        (Some(false), None),
        "{w}"
    );
    let lab = open(&app, "wendy", &id).await;
    assert_eq!(
        fill(&lab, "~/my_workspace/after-grow.bin", 20).await,
        "WROTE"
    );

    // A team's workspace has its own quota (16 MiB by default).
    let r = plain()
        .post(app.u("/api/v1/teams"))
        .bearer_auth(&t)
        .json(&json!({"name": "optics"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    stop(&app, &t, &id).await;
    let id = launch_running(&app, &t, "jupyterlab").await;
    assert!(insitu_launcher::storage::is_mount_point(
        &data_dir.join("teams/optics")
    ));
    assert!(data_dir.join("images/team-optics.img").is_file());
    let lab = open(&app, "wendy", &id).await;
    let refused = fill(&lab, "~/team_workspaces/optics/bench.bin", 32).await;
    assert_eq!(refused, "ERROR 28 No space left on device");
    let w = workspace(&app, &t).await;
    let team = &w["teams"][0];
    assert_eq!(team["team"], "optics", "{w}");
    assert_eq!(team["path"], "/home/user/team_workspaces/optics");
    assert_eq!(
        (
            team["quota"]["quota_bytes"].as_u64(),
            team["quota"]["full"].as_bool()
        ),
        (Some(16 * MIB), Some(true))
    );
    assert_eq!(
        w["quota"]["full"], false,
        "the user's own workspace is apart: {w}"
    );
    let (status, q) = set_quota(
        &app,
        &admin,
        "/api/v1/admin/quotas/teams/optics",
        json!(48 * MIB),
    )
    .await;
    assert_eq!(
        (status, q["quota_bytes"].as_u64()),
        (200, Some(48 * MIB)),
        "{q}"
    );
    stop(&app, &t, &id).await;
    wait_for_no_samp_hub(&data_dir).await;
    let id = launch_running(&app, &t, "jupyterlab").await;
    let w = workspace(&app, &t).await;
    let team = &w["teams"][0]["quota"];
    assert_eq!(
        (team["full"].as_bool(), &team["pending"]),
        (Some(false), &Value::Null),
        "{w}"
    );
    let lab = open(&app, "wendy", &id).await;
    assert_eq!(
        fill(&lab, "~/team_workspaces/optics/bench.bin", 24).await,
        "WROTE"
    );
    let (status, body) =
        set_quota(&app, &admin, "/api/v1/admin/quotas/teams/nope", json!(null)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("team_not_found"))
    );

    // A restart of the platform: the lab keeps its mounted workspace.
    app.restart().await;
    let w = workspace(&app, &t).await;
    assert_eq!(w["quota"]["quota_bytes"], 64 * MIB, "{w}");
    assert!(insitu_launcher::storage::is_mount_point(&home));
    let lab = open(&app, "wendy", &id).await;
    let (out, _) = lab
        .run("import os; print(os.path.getsize(os.path.expanduser('~/my_workspace/after-grow.bin')))")
        .await;
    assert_eq!(out.trim(), (20 * MIB).to_string());

    // Unmounted (as after a reboot), the image comes back with its data.
    stop(&app, &t, &id).await;
    insitu_launcher::storage::unmount(&home).ok();
    insitu_launcher::storage::unmount_lazily(&data_dir.join("teams/optics")).ok();
    let _id = launch_running(&app, &t, "testapp").await;
    assert!(insitu_launcher::storage::is_mount_point(&home));
    assert_eq!(
        std::fs::metadata(home.join("my_workspace/after-grow.bin"))
            .unwrap()
            .len(),
        20 * MIB
    );
    assert!(home.join("my_workspace/big.bin").is_file());

    drop(lab);
    drop(app);
    assert_detached(data_dir).await;
}

#[tokio::test]
async fn a_full_workspace_is_stopped_by_the_kernel_and_reported_on_sqlite() {
    a_full_workspace_is_stopped_by_the_kernel_and_reported(Db::Sqlite).await;
}

#[tokio::test]
async fn a_full_workspace_is_stopped_by_the_kernel_and_reported_on_postgresql() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    a_full_workspace_is_stopped_by_the_kernel_and_reported(Db::Postgres).await;
}

#[tokio::test]
async fn without_images_workspaces_are_plain_directories_and_say_so() {
    if !crate::labs::sandbox_available() {
        return;
    }
    let app = spawn_with(Options {
        configure: |c| c.quotas.user_workspace = "16MiB".to_owned(),
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("pia", "user").await;
    let _id = launch_running(&app, &t, "testapp").await;
    let home = app.config().data_dir.join("workspaces/pia");
    assert!(!insitu_launcher::storage::is_mount_point(&home));
    std::fs::write(home.join("my_workspace/notes.bin"), vec![0u8; 14 << 20]).unwrap();
    let w = workspace(&app, &t).await;
    let q = &w["quota"];
    assert_eq!(q["enforced"], false, "{w}");
    assert_eq!(q["not_enforced"], "quotas.workspace_images is off", "{w}");
    assert_eq!(q["capacity_bytes"], Value::Null);
    assert!(percent(q) >= 80.0, "{w}");
    assert!(
        q["warning"].as_str().unwrap().contains("% of its quota"),
        "{w}"
    );
    let (_, out, err) = cli(&app, &t, &["workspace", "show"]).await;
    assert!(
        out.contains("not limited here: quotas.workspace_images is off"),
        "{out}"
    );
    assert!(err.contains("warning: your workspace"), "{err}");
}

#[tokio::test]
async fn labs_cpu_memory_and_gpus_are_per_user_quotas_checked_at_launch() {
    if !crate::labs::sandbox_available() {
        return;
    }
    for db in backends() {
        // Each test lab asks for the default resources: 1 core, 2 GiB.
        let app = spawn_with(Options {
            db,
            configure: |c| c.quotas.cpu = Some(1.5),
            ..Options::default()
        })
        .await;
        let t = app.user_with_role("cora", "user").await;
        let admin = app.admin_token().await;
        let _first = launch_running(&app, &t, "testapp").await;
        let (status, body) = launch(&app, &t, "testapp", &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("resource_quota_exceeded")),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains("CPU"), "{body}");
        let (status, q) = get_json(&plain(), &app.u("/api/v1/me/quotas"), &t).await;
        assert_eq!(status, 200, "{q}");
        let c = &q["compute"];
        assert_eq!(
            (c["cpu"].as_f64(), c["cpu_used"].as_f64()),
            (Some(1.5), Some(1.0)),
            "{q}"
        );
        assert_eq!(
            (c["labs_used"].as_u64(), c["set"].as_bool()),
            (Some(1), Some(false)),
            "{q}"
        );
        assert_eq!(c["memory_used_bytes"], 2u64 << 30, "{q}");

        // An administrator raises the CPU quota and lowers the labs quota.
        let (code, out, err) = cli(
            &app,
            &admin,
            &[
                "quota", "set", "--user", "cora", "--cpu", "3", "--labs", "2", "--json",
            ],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let q: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (q["compute"]["cpu"].as_f64(), q["compute"]["labs"].as_u64()),
            (Some(3.0), Some(2))
        );
        assert_eq!(q["compute"]["set"], true);
        let _second = launch_running(&app, &t, "testapp").await;
        let (status, body) = launch(&app, &t, "testapp", &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("lab_quota_exceeded")),
            "{body}"
        );

        // Memory the same way; null sets the default back, and what was not
        // named stays.
        let r = plain()
            .put(app.u("/api/v1/admin/quotas/users/cora"))
            .bearer_auth(&admin)
            .json(&json!({"labs": 5, "memory_bytes": 3u64 << 30}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let q: Value = r.json().await.unwrap();
        assert_eq!(q["compute"]["cpu"], 3.0, "{q}");
        assert_eq!(q["compute"]["memory_bytes"], 3u64 << 30, "{q}");
        let (status, body) = launch(&app, &t, "testapp", &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("resource_quota_exceeded")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("memory"),
            "{body}"
        );
        let r = plain()
            .put(app.u("/api/v1/admin/quotas/users/cora"))
            .bearer_auth(&admin)
            .json(&json!({"memory_bytes": null}))
            .send()
            .await
            .unwrap();
        let q: Value = r.json().await.unwrap();
        assert_eq!(
            (&q["compute"]["memory_bytes"], q["compute"]["cpu"].as_f64()),
            (&Value::Null, Some(3.0)),
            "{q}"
        );
        let r = plain()
            .put(app.u("/api/v1/admin/quotas/users/cora"))
            .bearer_auth(&admin)
            .json(&json!({"cpu": -1}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let page = app.login("cora", PASSWORD).await;
        let page = page
            .client
            .get(app.u("/my-labs"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Your labs may hold at once: 5 labs (2 now), 3.0 CPU cores (2.0 now)"),
            "the labs page shows the quotas"
        );
        let (_, out, _) = cli(&app, &t, &["quota", "show"]).await;
        assert!(
            out.contains("labs: 2 of 5; CPU: 2 of 3; memory: 4 GiB of no limit"),
            "{out}"
        );
    }
}

/// `scripts/release-mounts.sh DIR`, as the README offers it for a data
/// directory to be thrown away: a workspace image mounted under it, with a
/// process still working in it, is let go (the process ended, the mount
/// and its loop device gone), and the directory can then be removed.
#[tokio::test]
async fn the_release_script_lets_go_of_a_data_directorys_mounts() {
    if !images_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let images = insitu_launcher::storage::Images::probe(&data_dir.join("images")).unwrap();
    let home = data_dir.join("workspaces/rae");
    images
        .ensure(&images.image_of("user-rae"), &home, 16 * MIB, (0, 0))
        .unwrap();
    assert!(insitu_launcher::storage::is_mount_point(&home));
    let mut inside = std::process::Command::new("sleep")
        .arg("300")
        .current_dir(&home)
        .spawn()
        .unwrap();
    let status = std::process::Command::new(repo_root().join("scripts/release-mounts.sh"))
        .arg(&data_dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!insitu_launcher::storage::is_mount_point(&home));
    let ended = inside.wait().unwrap();
    assert!(!ended.success(), "the process using the mount was ended");
    assert_detached(data_dir.clone()).await;
    std::fs::remove_dir_all(&data_dir).unwrap();
}
