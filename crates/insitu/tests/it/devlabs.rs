//! User-developed datalabs for real: a developer's draft built into an OCI
//! image with podman, test-launched as a container lab through the lab
//! proxy, submitted, approved by a moderator and launched from the
//! catalogue by another user; bad input gets its stable error code.
//!
//! These tests need podman (runtime runc) and the templates' base image
//! (`scripts/devlab-images.sh`); the test command sets
//! `INSITU_REQUIRE_CONTAINERS=1`, which turns their absence into a failure.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

/// The templates' Python base image.
pub(crate) const PYTHON_BASE: &str = "localhost/insitu/python:3";

pub(crate) fn containers_available() -> bool {
    let podman = std::path::Path::new("/usr/bin/podman").exists();
    let base = podman
        && std::process::Command::new("podman")
            .args(["image", "exists", PYTHON_BASE])
            .status()
            .is_ok_and(|s| s.success());
    if podman && base && crate::labs::sandbox_available() {
        return true;
    }
    assert!(
        std::env::var("INSITU_REQUIRE_CONTAINERS").as_deref() != Ok("1"),
        "podman and {PYTHON_BASE} are required (scripts/devlab-images.sh) but missing"
    );
    eprintln!("skipping: podman or {PYTHON_BASE} missing");
    false
}

pub(crate) async fn call(
    app: &impl Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = plain()
        .request(method.parse().unwrap(), app.u(path))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Creates a web tool draft whose program is the lab test tool (it reports
/// what it can read, list and write), as `token`'s developer.
pub(crate) async fn web_tool_draft(app: &impl Server, token: &str, name: &str) -> Value {
    let (status, d) = call(
        app,
        "POST",
        "/api/v1/devlabs",
        token,
        Some(json!({"name": name, "template": "web-tool", "title": "Sky viewer"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let mut source = d["source"].clone();
    let tool =
        std::fs::read_to_string(repo_root().join("crates/insitu/tests/it/fixtures/webapp.py"))
            .unwrap();
    source["files"]["app.py"] = Value::String(tool);
    let (status, d) = call(
        app,
        "PUT",
        &format!("/api/v1/devlabs/{name}"),
        token,
        Some(json!({"definition": d["definition"], "source": source})),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    d
}

/// Starts a build and waits until it ends; the build as it ended.
pub(crate) async fn build(app: &impl Server, token: &str, name: &str) -> Value {
    let (status, b) = call(
        app,
        "POST",
        &format!("/api/v1/devlabs/{name}/builds"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 202, "{b}");
    let number = b["number"].as_i64().unwrap();
    let start = Instant::now();
    loop {
        let (status, b) = call(
            app,
            "GET",
            &format!("/api/v1/devlabs/{name}/builds/{number}"),
            token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{b}");
        if !["queued", "running"].contains(&b["state"].as_str().unwrap()) {
            return b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "build still {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn build_log(app: &impl Server, token: &str, name: &str, number: i64) -> String {
    let r = plain()
        .get(app.u(&format!(
            "/api/v1/devlabs/{name}/builds/{number}/log?offset=0"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Launches a datalab with volumes and waits until it settles.
pub(crate) async fn launch_settled(
    app: &TestApp,
    token: &str,
    datalab: &str,
    volumes: &[&str],
) -> Value {
    let (status, lab) = crate::labs::launch(app, token, datalab, volumes).await;
    assert_eq!(status, 202, "{lab}");
    crate::labs::settle(app, token, lab["id"].as_str().unwrap()).await
}

/// Signs `user` in to a lab on the proxy: a client holding the lab cookie
/// and the lab's base URL.
pub(crate) async fn open(app: &TestApp, user: &str, id: &str) -> (reqwest::Client, String) {
    let session = app.login(user, PASSWORD).await;
    let r = session.open_lab(app, id).await;
    assert_eq!(r.status(), 303);
    let ticket_url = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let host = ticket_url.host_str().unwrap().to_owned();
    let port = ticket_url.port().unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let r = client.get(ticket_url.clone()).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    (client, format!("http://{host}:{port}/labs/{id}/"))
}

/// Asks the test tool in a lab to read, list or write a path.
pub(crate) async fn tool(client: &reqwest::Client, base: &str, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params(base, query).unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn stop(app: &impl Server, token: &str, id: &str) {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Whether podman still holds a lab's container.
pub(crate) fn container_exists(lab_id: &str) -> bool {
    std::process::Command::new("podman")
        .args(["container", "exists", &format!("insitu-lab-{lab_id}")])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn a_developed_datalab_is_built_tested_published_and_launched_by_others() {
    if !containers_available() {
        return;
    }
    for db in backends() {
        whole_flow(db).await;
    }
}

async fn whole_flow(db: Db) {
    let app = spawn_on(db).await;
    let dev = app.user_with_role("dora", "developer").await;
    let moderator = app.user_with_role("milo", "moderator").await;
    let ann = app.user_with_role("ann", "user").await;
    web_tool_draft(&app, &dev, "skyview").await;

    // A real podman build; its log is kept.
    let b1 = build(&app, &dev, "skyview").await;
    assert_eq!(b1["state"], "succeeded", "{b1}");
    assert_eq!(b1["build_version"], "0.1.0-0", "builds are numbered from 0");
    assert!(b1["duration_secs"].as_i64().is_some(), "{b1}");
    let log = build_log(&app, &dev, "skyview", 0).await;
    assert!(log.contains("COPY app.py"), "{log}");
    // Nobody else sees the draft, or launches it.
    let (status, _) = call(&app, "GET", "/api/v1/datalabs/skyview", &ann, None).await;
    assert_eq!(status, 404);
    let (status, e) = crate::labs::launch(&app, &ann, "skyview", &[]).await;
    assert_eq!(status, 404, "{e}");

    // The developer test-launches it: a container lab behind the proxy,
    // with a volume read-only and the workspace writable, unprivileged.
    let lab = launch_settled(&app, &dev, "skyview", &["deep-fields"]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    assert!(container_exists(&id), "the lab runs in a podman container");
    let (client, base) = open(&app, "dora", &id).await;
    let seen = tool(&client, &base, &[("list", "/media/data")]).await;
    assert_eq!(seen["volumes"], json!(["deep-fields"]), "{seen}");
    let volume_files = tool(&client, &base, &[("list", "/media/data/deep-fields")]).await;
    assert!(
        !volume_files["files"]["list"].as_array().unwrap().is_empty(),
        "{volume_files}"
    );
    let w = tool(
        &client,
        &base,
        &[
            ("write", "/media/data/deep-fields/planted.txt"),
            ("data", "x"),
        ],
    )
    .await;
    assert!(
        w["files"]["write_error"]
            .as_str()
            .is_some_and(|e| e.contains("Read-only")),
        "a volume is read-only inside: {w}"
    );
    let w = tool(
        &client,
        &base,
        &[
            ("write", "/home/user/notes.txt"),
            ("data", "from my datalab"),
        ],
    )
    .await;
    assert_eq!(w["files"]["write"], "written", "{w}");
    let on_host = app.dir.path().join("data/workspaces/dora/notes.txt");
    assert_eq!(
        std::fs::read_to_string(&on_host).unwrap(),
        "from my datalab"
    );
    let status = tool(&client, &base, &[("read", "/proc/self/status")]).await;
    let status = status["files"]["read"].as_str().unwrap().to_owned();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert!(!field("Uid:").starts_with("0\t"), "{status}");
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000000000", "{status}");
    stop(&app, &dev, &id).await;
    let lab = crate::labs::settle(&app, &dev, &id).await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    assert!(
        !container_exists(&id),
        "a stopped lab's container is removed"
    );

    // Submit → moderator queue → approve; public, it is in everyone's
    // catalogue with its facts.
    let (status, r) = call(
        &app,
        "POST",
        "/api/v1/devlabs/skyview/submissions",
        &dev,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["state"], "submitted");
    let (status, queue) = call(
        &app,
        "GET",
        "/api/v1/moderation/submissions",
        &moderator,
        None,
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(
        queue["items"][0]["release"]["datalab"], "skyview",
        "{queue}"
    );
    assert!(
        queue["items"][0]["source"]["containerfile"]
            .as_str()
            .unwrap()
            .contains("FROM localhost/insitu/python:3"),
        "the moderator reviews the source: {queue}"
    );
    let (status, r) = call(
        &app,
        "POST",
        "/api/v1/moderation/submissions/skyview/0/approve",
        &moderator,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "approved");
    let (status, d) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/skyview/audience",
        &dev,
        Some(json!({"public": true})),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let (status, listed) = call(&app, "GET", "/api/v1/datalabs?q=sky", &ann, None).await;
    assert_eq!(status, 200);
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "skyview")
        .unwrap_or_else(|| panic!("a published datalab is listed: {listed}"))
        .clone();
    assert_eq!(item["developed"]["state"], "published", "{item}");
    assert_eq!(item["developed"]["author"], "dora", "{item}");
    assert_eq!(item["developed"]["versions"], json!(["0.1.0"]), "{item}");
    assert_eq!(item["version"], "0.1.0", "{item}");

    // Another user launches the published version from the catalogue.
    let lab = launch_settled(&app, &ann, "skyview", &[]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let (client, base) = open(&app, "ann", &id).await;
    let seen = tool(&client, &base, &[("list", "/home/user")]).await;
    assert_eq!(seen["home"], "/home/user", "{seen}");
    stop(&app, &ann, &id).await;
    let (status, _) = call(&app, "PUT", "/api/v1/datalabs/skyview/star", &ann, None).await;
    assert_eq!(status, 204);
    let (_, mine) = call(&app, "GET", "/api/v1/datalabs/skyview", &dev, None).await;
    assert_eq!(mine["developed"]["starred"], false, "{mine}");
    assert_eq!(mine["developed"]["stars"], 1, "{mine}");
    let (_, item) = call(&app, "GET", "/api/v1/datalabs/skyview", &ann, None).await;
    assert_eq!(item["developed"]["starred"], true, "{item}");
    assert!(
        item["developed"]["launches"].as_i64().unwrap() >= 1,
        "{item}"
    );
}

#[tokio::test]
async fn a_rebuild_of_an_unchanged_definition_reuses_the_layer_cache() {
    if !containers_available() {
        return;
    }
    let app = spawn_app().await;
    let dev = app.user_with_role("dora", "developer").await;
    web_tool_draft(&app, &dev, "cached").await;
    let b1 = build(&app, &dev, "cached").await;
    assert_eq!(b1["state"], "succeeded", "{b1}");
    let b2 = build(&app, &dev, "cached").await;
    assert_eq!(b2["state"], "succeeded", "{b2}");
    assert_eq!(b2["build_version"], "0.1.0-1");
    let log = build_log(&app, &dev, "cached", 1).await;
    assert!(log.contains("Using cache"), "{log}");
    let (status, list) = call(&app, "GET", "/api/v1/devlabs/cached/builds", &dev, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test]
async fn a_failed_build_names_its_error_line() {
    if !containers_available() {
        return;
    }
    let app = spawn_app().await;
    let dev = app.user_with_role("dora", "developer").await;
    let d = web_tool_draft(&app, &dev, "broken").await;
    let mut source = d["source"].clone();
    source["containerfile"] = Value::String(format!(
        "FROM {PYTHON_BASE}\nRUN apt-get install -y no-such-package-here\n"
    ));
    let (status, d) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/broken",
        &dev,
        Some(json!({"definition": d["definition"], "source": source})),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let b = build(&app, &dev, "broken").await;
    assert_eq!(b["state"], "failed", "{b}");
    let error = b["error"].as_str().unwrap();
    // The failing step's own error, and which step it was.
    assert!(
        error.starts_with("E: Unable to locate package no-such-package-here"),
        "{error}"
    );
    assert!(error.contains("RUN apt-get install"), "{error}");
    // A failed build cannot be submitted, or launched.
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/devlabs/broken/submissions",
        &dev,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (409, Some("build_not_ready")));
    let (status, e) = crate::labs::launch(&app, &dev, "broken", &[]).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (404, Some("version_not_found")),
        "{e}"
    );
}

#[tokio::test]
async fn bad_drafts_get_stable_error_codes() {
    let app = spawn_app().await;
    let dev = app.user_with_role("dora", "developer").await;
    let user = app.user_with_role("ulla", "user").await;
    let create = |name: &str, template: &str| json!({"name": name, "template": template});
    // Only developers (and above) develop.
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/devlabs",
        &user,
        Some(create("x", "web-tool")),
    )
    .await;
    assert_eq!(status, 403, "{e}");
    for (body, code) in [
        (create("Bad Name", "web-tool"), "invalid_devlab_name"),
        (create("../etc", "web-tool"), "invalid_devlab_name"),
        (create("ok", "cobol"), "invalid_template"),
        (create("testapp", "web-tool"), "devlab_exists"),
    ] {
        let (status, e) = call(&app, "POST", "/api/v1/devlabs", &dev, Some(body.clone())).await;
        assert_eq!(e["code"], code, "{body} → {status} {e}");
        assert!(status == 409 || status == 422, "{status}");
    }
    let (status, d) = call(
        &app,
        "POST",
        "/api/v1/devlabs",
        &dev,
        Some(create("ok", "web-tool")),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/devlabs",
        &dev,
        Some(create("ok", "python")),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (409, Some("devlab_exists")));

    let put =
        |definition: &Value, source: &Value| json!({"definition": definition, "source": source});
    let mut def = d["definition"].clone();
    def["license"] = json!("WTFPL-but-not-listed");
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/ok",
        &dev,
        Some(put(&def, &d["source"])),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("invalid_license")),
        "{e}"
    );
    let mut def = d["definition"].clone();
    def["memory"] = json!("lots");
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/ok",
        &dev,
        Some(put(&def, &d["source"])),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("invalid_definition")),
        "{e}"
    );
    for containerfile in [
        "FROM docker.io/library/ubuntu:latest\n",
        "FROM localhost/insitu/python:3\nRUN --mount=type=bind,source=/,target=/host cat /host/etc/shadow\n",
        "# syntax=docker/dockerfile:1\nFROM localhost/insitu/python:3\n",
    ] {
        let mut source = d["source"].clone();
        source["containerfile"] = json!(containerfile);
        let (status, e) = call(
            &app,
            "PUT",
            "/api/v1/devlabs/ok",
            &dev,
            Some(put(&d["definition"], &source)),
        )
        .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (422, Some("invalid_containerfile")),
            "{containerfile}: {e}"
        );
    }
    let mut source = d["source"].clone();
    source["files"]["big.txt"] = json!("x".repeat(300 * 1024));
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/ok",
        &dev,
        Some(put(&d["definition"], &source)),
    )
    .await;
    assert!(
        (status == 422 && e["code"] == "invalid_containerfile") || (status == 413),
        "an oversize source is refused: {status} {e}"
    );
    let mut source = d["source"].clone();
    source["files"]["../outside"] = json!("x");
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/ok",
        &dev,
        Some(put(&d["definition"], &source)),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("invalid_containerfile")),
        "{e}"
    );

    // Submissions and decisions on what does not exist or is not pending.
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/devlabs/ok/submissions",
        &dev,
        Some(json!({"build": 7})),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (404, Some("build_not_found")));
    let moderator = app.user_with_role("milo", "moderator").await;
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/moderation/submissions/ok/0/approve",
        &moderator,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (409, Some("submission_not_pending"))
    );
    let (status, e) = call(
        &app,
        "PUT",
        "/api/v1/devlabs/ok/audience",
        &dev,
        Some(json!({"public": false, "users": ["nobody-here"]})),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (404, Some("user_not_found")),
        "{e}"
    );

    // Imports that are not ours.
    for body in [b"not a tar file at all".to_vec(), vec![0u8; 1024]] {
        let r = plain()
            .post(app.u("/api/v1/devlabs/import"))
            .bearer_auth(&dev)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            (status, e["code"].as_str()),
            (422, Some("invalid_import")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn an_exported_datalab_is_imported_on_another_platform_and_launches_there() {
    if !containers_available() {
        return;
    }
    let here = spawn_app().await;
    let dev = here.user_with_role("dora", "developer").await;
    web_tool_draft(&here, &dev, "travels").await;
    let b = build(&here, &dev, "travels").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    let r = plain()
        .get(here.u("/api/v1/devlabs/travels/builds/0/export"))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let archive = r.bytes().await.unwrap();
    assert!(archive.len() > 1024, "the export holds the image");

    let there = spawn_app().await;
    let tess = there.user_with_role("tess", "developer").await;
    // An export above the platform's limit is refused as it comes.
    let small = spawn_with(Options {
        configure: |c| c.devlabs.max_import_size = "64KiB".to_owned(),
        ..Options::default()
    })
    .await;
    let tiny = small.user_with_role("tess", "developer").await;
    let r = plain()
        .post(small.u("/api/v1/devlabs/import"))
        .bearer_auth(&tiny)
        .body(archive.clone())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        (status, e["code"].as_str()),
        (413, Some("payload_too_large")),
        "{e}"
    );

    let r = plain()
        .post(there.u("/api/v1/devlabs/import?name=arrived"))
        .bearer_auth(&tess)
        .body(archive)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let d: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{d}");
    assert_eq!(d["name"], "arrived");
    assert_eq!(d["owner"], "tess");
    assert_eq!(d["builds"][0]["state"], "succeeded", "{d}");
    assert_eq!(d["builds"][0]["imported"], true, "{d}");
    assert_eq!(
        d["definition"]["author"], "dora",
        "the author travels with it"
    );
    let lab = launch_settled(&there, &tess, "arrived", &[]).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let (client, base) = open(&there, "tess", &id).await;
    let seen = tool(&client, &base, &[("list", "/opt/tool")]).await;
    assert_eq!(seen["files"]["list"], json!(["app.py"]), "{seen}");
    stop(&there, &tess, &id).await;
}

/// The host pid of a lab container's first process.
fn container_pid(lab_id: &str) -> i64 {
    let out = std::process::Command::new("podman")
        .args([
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &format!("insitu-lab-{lab_id}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Whether podman holds an image.
fn image_exists(image: &str) -> bool {
    std::process::Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn old_images_go_by_the_rule_and_submitted_ones_stay() {
    if !containers_available() {
        return;
    }
    let app = spawn_with(Options {
        configure: |c| c.devlabs.keep_builds = 1,
        ..Options::default()
    })
    .await;
    let dev = app.user_with_role("dora", "developer").await;
    web_tool_draft(&app, &dev, "kept").await;
    let b0 = build(&app, &dev, "kept").await;
    assert_eq!(b0["state"], "succeeded", "{b0}");
    let (status, _) = call(
        &app,
        "POST",
        "/api/v1/devlabs/kept/submissions",
        &dev,
        Some(json!({"build": 0})),
    )
    .await;
    assert_eq!(status, 201);
    let b1 = build(&app, &dev, "kept").await;
    let b2 = build(&app, &dev, "kept").await;
    assert_eq!(
        (&b1["state"], &b2["state"]),
        (&json!("succeeded"), &json!("succeeded"))
    );
    // The newest build and the submitted one keep their images (old ones
    // are collected once a build has ended).
    let start = Instant::now();
    loop {
        let (_, d) = call(&app, "GET", "/api/v1/devlabs/kept", &dev, None).await;
        let kept: Vec<(i64, bool)> = d["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["number"].as_i64().unwrap(),
                    b["image_kept"].as_bool().unwrap(),
                )
            })
            .collect();
        if kept == [(2, true), (1, false), (0, true)] {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{kept:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(image_exists(b2["image"].as_str().unwrap()));
    assert!(image_exists(b0["image"].as_str().unwrap()));
    assert!(!image_exists(b1["image"].as_str().unwrap()));
    let (status, e) = call(
        &app,
        "POST",
        "/api/v1/devlabs/kept/submissions",
        &dev,
        Some(json!({"build": 1})),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (409, Some("image_removed")),
        "{e}"
    );
    // Deleted, the datalab takes its images along.
    let (status, _) = call(&app, "DELETE", "/api/v1/devlabs/kept", &dev, None).await;
    assert_eq!(status, 204);
    assert!(!image_exists(b2["image"].as_str().unwrap()));
    assert!(!image_exists(b0["image"].as_str().unwrap()));
}

/// Opens a lab on the proxy with a link from the API, as a script or a
/// returning browser gets one: a client holding the lab cookie, and the
/// lab's base URL.
async fn open_with_token(app: &impl Server, token: &str, id: &str) -> (reqwest::Client, String) {
    let (status, link) = call(app, "POST", &format!("/api/v1/labs/{id}/open"), token, None).await;
    assert_eq!(status, 200, "{link}");
    let url = reqwest::Url::parse(link["url"].as_str().unwrap()).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let r = client.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    (client, format!("http://{host}:{port}/labs/{id}/"))
}

#[tokio::test]
async fn a_container_lab_survives_a_crash_of_the_platform_and_stops_for_real() {
    if !containers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &Options::default()).await;
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let dev = server.user_with_role("dora", "developer").await;
    web_tool_draft(&server, &dev, "durable").await;
    let b = build(&server, &dev, "durable").await;
    assert_eq!(b["state"], "succeeded", "{b}");
    let (status, lab) = crate::labs::launch(&server, &dev, "durable", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let lab = crate::labs::settle(&server, &dev, &id).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let pid = container_pid(&id);
    assert!(pid > 0);
    let (client, base) = open_with_token(&server, &dev, &id).await;
    tool(
        &client,
        &base,
        &[("write", "/home/user/before.txt"), ("data", "kept")],
    )
    .await;

    // The server's process dies; the container does not.
    server.end("KILL");
    assert!(container_exists(&id), "the container outlives the platform");
    server.start_again().await;
    let start = Instant::now();
    let lab = loop {
        let (status, lab) = call(&server, "GET", &format!("/api/v1/labs/{id}"), &dev, None).await;
        assert_eq!(status, 200, "{lab}");
        if lab["state"] == "running" {
            break lab;
        }
        assert_eq!(lab["state"], "starting", "{lab}");
        assert!(start.elapsed() < Duration::from_secs(60), "{lab}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(container_pid(&id), pid, "the same container runs on: {lab}");
    let (client, base) = open_with_token(&server, &dev, &id).await;
    let seen = tool(&client, &base, &[("read", "/home/user/before.txt")]).await;
    assert_eq!(seen["files"]["read"], "kept", "{seen}");
    stop(&server, &dev, &id).await;
    let lab = crate::labs::settle(&server, &dev, &id).await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    assert!(!container_exists(&id), "stopped for real");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the tool's process is gone"
    );
}
