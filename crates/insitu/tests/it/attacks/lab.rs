//! Attacks from inside a lab: code a user runs in their lab (here, the
//! test web app doing as told) reaches for the platform's configuration,
//! its database, what the operator hides, the host's control groups and
//! another lab's group.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::harness::*;
use crate::labs::{launch, settle};
use crate::lifecycle::{available, id_of, open_lab};
use insitu_web::Secret;

/// What the lab's tool found doing `action` (`read`, `list`, `write`) to
/// `path`: `Ok` with the text or entries, `Err` with the error's text.
async fn attempt(
    client: &reqwest::Client,
    base: &str,
    action: &str,
    path: &str,
    data: Option<&str>,
) -> Result<Value, String> {
    let mut query = vec![(action, path)];
    if let Some(d) = data {
        query.push(("data", d));
    }
    let url = reqwest::Url::parse_with_params(base, &query).unwrap();
    let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    let files = &page["files"];
    match files.get(format!("{action}_error")) {
        Some(e) => Err(e.as_str().unwrap().to_owned()),
        None => Ok(files[action].clone()),
    }
}

fn write_public(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn public_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn a_lab_reads_neither_the_configuration_nor_the_database_nor_what_the_operator_hides() {
    if !available() {
        return;
    }
    // Under the build directory, which labs see read-only like the rest of
    // the host (a directory under /tmp would be out of sight anyway).
    let dir = tempfile::Builder::new()
        .prefix("attack-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let root = dir.path();
    let mut config = test_config(root, &Options::default()).await;
    for sub in ["etc", "db", "secrets"] {
        public_dir(&root.join(sub));
    }
    write_public(&root.join("etc/readable.txt"), "beside the configuration");
    write_public(&root.join("secrets/token.txt"), "an operator's secret");
    config.database_url = Some(Secret::new(format!(
        "sqlite://{}",
        root.join("db/insitu.db").display()
    )));
    config.labs.hidden.push(root.join("secrets"));
    let config_path = root.join("etc/insitu.toml");
    let server = ServerProcess::start(config, config_path.clone()).await;
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        std::fs::read_to_string(&config_path)
            .unwrap()
            .contains(ADMIN_PASSWORD),
        "the file holds a secret worth stealing"
    );
    let t = server.user_with_role("mallory", "user").await;
    let (status, lab) = launch(&server, &t, "testapp", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = id_of(&lab);
    assert_eq!(settle(&server, &t, &id).await["state"], "running");
    let (client, base) = open_lab(&server, &t, &id).await;
    let path = |p: &str| root.join(p).display().to_string();

    // The lab sees the directory the configuration is in: the cover, not
    // the directory's permissions, is what stops it.
    assert_eq!(
        attempt(&client, &base, "read", &path("etc/readable.txt"), None).await,
        Ok(Value::from("beside the configuration"))
    );
    // Covered by an empty device node, which the lab may not even open.
    let read = attempt(&client, &base, "read", &path("etc/insitu.toml"), None).await;
    assert!(
        read == Ok(Value::from(""))
            || read
                .as_ref()
                .is_err_and(|e| e.starts_with("PermissionError")),
        "the configuration is out of reach: {read:?}"
    );
    for p in [
        "db/insitu.db",
        "db/insitu.db-wal",
        "db/insitu.db-shm",
        "secrets/token.txt",
    ] {
        let read = attempt(&client, &base, "read", &path(p), None).await;
        assert!(
            read.as_ref()
                .is_err_and(|e| e.starts_with("FileNotFoundError")),
            "{p}: {read:?}"
        );
    }
    assert!(
        root.join("db/insitu.db-wal").exists(),
        "the database's files exist on the host"
    );
    for p in ["db", "secrets", "data"] {
        assert_eq!(
            attempt(&client, &base, "list", &path(p), None).await,
            Ok(Value::Array(Vec::new())),
            "{p} looks empty"
        );
    }
}

/// Where a lab's group memory limit shows inside it (cgroup v1 or v2).
async fn own_memory_limit(client: &reqwest::Client, base: &str) -> (String, String) {
    for p in [
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory.max",
    ] {
        if let Ok(v) = attempt(client, base, "read", p, None).await {
            return (p.to_owned(), v.as_str().unwrap().trim().to_owned());
        }
    }
    panic!("the lab does not see its own memory limit");
}

#[tokio::test]
async fn a_lab_sees_only_its_own_control_group_read_only_and_never_another_labs() {
    if !available()
        || !insitu_launcher::Cgroups::detect("insitu")
            .enforces(insitu_launcher::limits::Controller::Memory)
    {
        return;
    }
    let app = spawn_app().await;
    let catalogue = app.dir.path().join("catalogue");
    let testapp = std::fs::read_to_string(catalogue.join("testapp.toml")).unwrap();
    std::fs::write(
        catalogue.join("boxed.toml"),
        format!("{testapp}[resources]\nmemory = \"128MiB\"\n"),
    )
    .unwrap();
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let eve = app.user_with_role("eve", "user").await;
    let vic = app.user_with_role("vic", "user").await;
    let mut ids = Vec::new();
    for t in [&eve, &vic] {
        let (_, lab) = launch(&app, t, "boxed", &[]).await;
        let id = id_of(&lab);
        assert_eq!(settle(&app, t, &id).await["state"], "running");
        ids.push(id);
    }
    let (mine, theirs) = (&ids[0], &ids[1]);
    let (client, base) = open_lab(&app, &eve, mine).await;

    let (limit_file, limit) = own_memory_limit(&client, &base).await;
    assert_eq!(limit, (128u64 << 20).to_string(), "its own limit, seen");
    let raised = attempt(&client, &base, "write", &limit_file, Some("9999999999")).await;
    assert!(
        raised
            .as_ref()
            .is_err_and(|e| e.contains("Read-only file system") || e.contains("Permission denied")),
        "its own limit cannot be raised: {raised:?}"
    );
    let (_, after) = own_memory_limit(&client, &base).await;
    assert_eq!(after, limit);

    // Nothing of the host's tree or of other groups is there.
    let top = attempt(&client, &base, "list", "/sys/fs/cgroup", None)
        .await
        .unwrap();
    for entry in top.as_array().unwrap() {
        let entry = entry.as_str().unwrap();
        let inside = format!("/sys/fs/cgroup/{entry}");
        if let Ok(Value::Array(names)) = attempt(&client, &base, "list", &inside, None).await {
            for n in names {
                let n = n.as_str().unwrap();
                assert!(
                    n != "insitu" && n != theirs && n != mine && !n.starts_with("samp-"),
                    "{inside}/{n} shows another group"
                );
            }
        }
        assert!(entry != "insitu" && entry != theirs, "{entry}");
    }
    let host = insitu_launcher::Cgroups::detect("insitu");
    for dir in host.dirs(theirs) {
        let procs = dir.join("cgroup.procs").display().to_string();
        let read = attempt(&client, &base, "read", &procs, None).await;
        assert!(read.is_err(), "{procs}: {read:?}");
        let moved = attempt(&client, &base, "write", &procs, Some("1")).await;
        assert!(moved.is_err(), "{procs}: {moved:?}");
    }
    let seen = attempt(&client, &base, "read", "/proc/self/cgroup", None)
        .await
        .unwrap();
    for line in seen.as_str().unwrap().lines() {
        assert!(
            !line.contains("insitu") && !line.contains(theirs.as_str()),
            "its cgroup namespace is rooted at its own group: {line}"
        );
    }
    // The other lab is untouched.
    let (_, vlab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{theirs}")), &vic).await;
    assert_eq!(vlab["state"], "running");
}
