//! Launching labs for real: a small web tool in a bubblewrap sandbox, its
//! progress, logs, failure reporting, quota, privacy and a platform restart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

pub(crate) fn sandbox_available() -> bool {
    if std::path::Path::new("/usr/bin/bwrap").exists() {
        return true;
    }
    assert!(
        std::env::var("INSITU_REQUIRE_SANDBOX").as_deref() != Ok("1"),
        "bubblewrap is required but missing"
    );
    eprintln!("skipping: bubblewrap is not installed");
    false
}

pub(crate) async fn launch(
    app: &impl Server,
    token: &str,
    datalab: &str,
    volumes: &[&str],
) -> (u16, Value) {
    post_json(
        app,
        token,
        "/api/v1/labs",
        &json!({"datalab": datalab, "volumes": volumes}),
    )
    .await
}

/// Polls the lab until it leaves the launch states.
pub(crate) async fn settle(app: &impl Server, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let (status, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), token).await;
        assert_eq!(status, 200, "{lab}");
        if !["pending", "starting"].contains(&lab["state"].as_str().unwrap()) {
            return lab;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "lab still {lab}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The test tool's processes for one lab (its base URL holds the lab id).
fn tool_pids(lab_id: &str) -> Vec<u32> {
    let needle = format!("/labs/{lab_id}/");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with("python3\0") && c.contains(&needle))
        })
        .collect()
}

#[tokio::test]
async fn a_web_tool_launches_reports_progress_and_stops() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("mona", "user").await;
    let (status, lab) = launch(&app, &t, "testapp", &["deep-fields"]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    assert_eq!(lab["state"], "pending");
    let lab = settle(&app, &t, &id).await;
    assert_eq!(lab["state"], "running", "{lab}");
    let steps: Vec<&str> = lab["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "queued",
            "sandbox_prepared",
            "process_started",
            "waiting_for_readiness",
            "ready"
        ]
    );
    assert_eq!(lab["volumes"], json!(["deep-fields"]));

    let (_, logs) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}/logs")), &t).await;
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("webapp listening")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("GET /labs/{id}/"))),
        "readiness probe on the base URL: {lines:?}"
    );
    assert_eq!(tool_pids(&id).len(), 1);

    // Opened from the platform, the lab is served by the proxy's origin; the
    // tool never sees the platform's cookies.
    let session = app.login("mona", PASSWORD).await;
    let r = session.open_lab(&app, &id).await;
    assert_eq!(r.status(), 303);
    let ticket_url = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        !ticket_url.starts_with(&app.url),
        "labs live on another origin: {ticket_url}"
    );
    let r = session.client.get(&ticket_url).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    let lab_url = format!(
        "{}{}",
        ticket_url.split("/labs/").next().unwrap(),
        r.headers()["location"].to_str().unwrap()
    );
    let page: Value = session
        .client
        .get(&lab_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["path"], format!("/labs/{id}/"));
    assert_eq!(page["home"], "/home/user");
    assert_eq!(page["volumes"], json!(["deep-fields"]));
    assert!(
        !page["cookie"].as_str().unwrap_or("").contains("insitu_"),
        "platform cookies stripped: {page}"
    );
    let r = browser().get(&ticket_url).send().await.unwrap();
    assert_ne!(r.status(), 303, "a ticket works once");
    // Nobody else opens it: not through the platform, not with a bare request.
    app.user_with_role("mona-rival", "user").await;
    let rival = app.login("mona-rival", PASSWORD).await;
    let r = rival.open_lab(&app, &id).await;
    assert_eq!(r.status(), 404);
    let r = rival.client.get(&lab_url).send().await.unwrap();
    assert_eq!(r.status(), 401, "no lab cookie, no lab");

    let (_, listed) = get_json(&plain(), &app.u("/api/v1/labs"), &t).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());

    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stopped: Value = r.json().await.unwrap();
    assert_eq!(stopped["state"], "stopped");
    assert!(tool_pids(&id).is_empty(), "no process outlives the stop");
    let r = session.client.get(&lab_url).send().await.unwrap();
    // Stopping revoked the proxy session: the lab is out of reach at once.
    assert_eq!(
        r.status(),
        401,
        "a stopped lab is gone from the proxy at once"
    );
    assert!(
        app.dir.path().join("data/workspaces/mona").is_dir(),
        "the workspace stays"
    );
}

#[tokio::test]
async fn a_tool_that_exits_at_once_is_reported_with_its_output_within_seconds() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("nils", "user").await;
    let started = Instant::now();
    let (_, lab) = launch(&app, &t, "crashes", &[]).await;
    let lab = settle(&app, &t, lab["id"].as_str().unwrap()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reported after {:?}",
        started.elapsed()
    );
    assert_eq!(lab["state"], "failed");
    let reason = lab["reason"].as_str().unwrap();
    assert!(
        reason.contains("exit code 3") && reason.contains("fatal: no licence server"),
        "{reason}"
    );
}

#[tokio::test]
async fn quota_privacy_and_refusals() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("olga", "user").await;
    let other = app.user_with_role("pete", "user").await;
    let (_, a) = launch(&app, &t, "testapp", &[]).await;
    let (_, _b) = launch(&app, &t, "testapp", &[]).await;
    let (status, third) = launch(&app, &t, "testapp", &[]).await;
    assert_eq!(
        (status, third["code"].as_str()),
        (409, Some("lab_quota_exceeded")),
        "{third}"
    );

    let id = a["id"].as_str().unwrap();
    let (status, body) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("lab_not_found")),
        "another user's lab is invisible"
    );
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, theirs) = get_json(&plain(), &app.u("/api/v1/labs"), &other).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());

    let (status, body) = launch(&app, &other, "nope", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("datalab_not_found"))
    );
    let (status, body) = launch(&app, &other, "testapp", &["no-such-volume"]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("volume_not_found"))
    );

    for lab in get_json(&plain(), &app.u("/api/v1/labs"), &t).await.1["items"]
        .as_array()
        .unwrap()
    {
        let id = lab["id"].as_str().unwrap();
        settle(&app, &t, id).await;
        plain()
            .post(app.u(&format!("/api/v1/labs/{id}/stop")))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn running_labs_survive_a_platform_restart() {
    if !sandbox_available() {
        return;
    }
    let mut app = spawn_app().await;
    let t = app.user_with_role("quin", "user").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = lab["id"].as_str().unwrap().to_owned();
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let before = tool_pids(&id);
    assert_eq!(before.len(), 1);

    app.restart().await;
    let (status, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &t).await;
    assert_eq!(
        (status, lab["state"].as_str()),
        (200, Some("running")),
        "{lab}"
    );
    assert_eq!(tool_pids(&id), before, "the same process, re-adopted");

    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "stopped");
    assert!(tool_pids(&id).is_empty(), "an adopted lab stops for real");
}

#[tokio::test]
async fn jupyterlab_starts_in_a_sandbox_next_to_the_volumes() {
    if !sandbox_available() {
        return;
    }
    if !repo_root().join(".venv/bin/jupyter-lab").exists() {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "JupyterLab is required but .venv/bin/jupyter-lab is missing"
        );
        eprintln!("skipping: JupyterLab is not installed in .venv");
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("sara", "user").await;
    let (status, lab) = launch(&app, &t, "jupyterlab", &["deep-fields"]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let lab = settle(&app, &t, &id).await;
    let (_, logs) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}/logs")), &t).await;
    assert_eq!(lab["state"], "running", "{lab} {logs}");
    let text = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(&format!("/labs/{id}/")),
        "JupyterLab serves under the lab's base URL: {text}"
    );
    assert!(
        text.contains("/home/user"),
        "rooted in the workspace: {text}"
    );
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "stopped");
}

#[tokio::test]
async fn gpus_are_assigned_from_the_inventory_and_refused_beyond_it() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_with(Options {
        gpus: vec!["0".into(), "1".into()],
        ..Options::default()
    })
    .await;
    let (a, b, c) = (
        app.user_with_role("gpu-a", "user").await,
        app.user_with_role("gpu-b", "user").await,
        app.user_with_role("gpu-c", "user").await,
    );
    let mut seen = Vec::new();
    for t in [&a, &b] {
        let (status, lab) = launch(&app, t, "gpuapp", &[]).await;
        assert_eq!(status, 202, "{lab}");
        let id = lab["id"].as_str().unwrap().to_owned();
        assert_eq!(settle(&app, t, &id).await["state"], "running");
        let (_, logs) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}/logs")), t).await;
        let first = logs["lines"][0].as_str().unwrap().to_owned();
        seen.push(first.rsplit("gpus=").next().unwrap().to_owned());
        seen.sort();
    }
    assert_eq!(
        seen,
        ["0", "1"],
        "each lab gets its own device (CUDA_VISIBLE_DEVICES)"
    );
    let (status, body) = launch(&app, &c, "gpuapp", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("gpu_unavailable")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 in all and 0 free")
    );
    // A lab without GPUs still launches.
    let (status, _) = launch(&app, &c, "testapp", &[]).await;
    assert_eq!(status, 202);

    let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &a).await;
    let id = labs["items"][0]["id"].as_str().unwrap().to_owned();
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    let (status, lab) = launch(&app, &c, "gpuapp", &[]).await;
    assert_eq!(status, 202, "the freed GPU is assigned again: {lab}");
    for t in [&a, &b, &c] {
        for lab in get_json(&plain(), &app.u("/api/v1/labs"), t).await.1["items"]
            .as_array()
            .unwrap()
        {
            let id = lab["id"].as_str().unwrap();
            settle(&app, t, id).await;
            plain()
                .post(app.u(&format!("/api/v1/labs/{id}/stop")))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn idle_labs_are_stopped_and_say_why() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_with(Options {
        lab_idle_timeout: "2s",
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("ivy", "user").await;
    let (_, lab) = launch(&app, &t, "testapp", &[]).await;
    let id = lab["id"].as_str().unwrap().to_owned();
    assert_eq!(settle(&app, &t, &id).await["state"], "running");
    let start = Instant::now();
    loop {
        let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &t).await;
        if lab["state"] == "stopped" {
            assert!(
                lab["reason"].as_str().unwrap().contains("idle culling"),
                "{lab}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still {lab}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "not culled before the idle time"
    );
    assert!(tool_pids(&id).is_empty());
}

/// The light form of the restart scenarios in `restart`: one web lab, the
/// server's process ended by SIGKILL then SIGTERM.
#[tokio::test]
async fn labs_survive_the_end_of_the_server_process() {
    if !sandbox_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), &Options::default()).await;
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let t = server.admin_token().await;
    let (status, lab) = launch(&server, &t, "testapp", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    assert_eq!(settle(&server, &t, &id).await["state"], "running");
    let lab_url = server.u(&format!("/api/v1/labs/{id}"));
    let before = tool_pids(&id);
    assert_eq!(before.len(), 1);

    for how in ["KILL", "TERM"] {
        // The server's process alone, as a crash or a service manager ends it.
        server.end(how);
        assert_eq!(
            tool_pids(&id),
            before,
            "the lab outlived the server's SIG{how}"
        );
        server.start_again().await;
        let (_, lab) = get_json(&plain(), &lab_url, &t).await;
        assert_eq!(
            lab["state"], "running",
            "after the server's SIG{how}: {lab}"
        );
        assert_eq!(tool_pids(&id), before, "the same process, re-adopted");
    }
    let r = plain()
        .post(format!("{lab_url}/stop"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "stopped");
    assert!(tool_pids(&id).is_empty(), "an adopted lab stops for real");
}

/// The operator's console: an administrator sees every user's active labs
/// with their owner, age, idle time and what they use now, and stops one
/// with a reason its user reads; nobody else sees or stops them, and a
/// stop without a reason is refused.
#[tokio::test]
async fn an_operator_sees_every_users_labs_and_stops_one_with_a_reason() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_app().await;
    let admin = app.user_with_role("olga", "admin").await;
    let mona = app.user_with_role("mona", "user").await;
    let nils = app.user_with_role("nils", "moderator").await;
    let mut ids = Vec::new();
    for token in [&mona, &nils] {
        let (status, lab) = launch(&app, token, "testapp", &["deep-fields"]).await;
        assert_eq!(status, 202, "{lab}");
        let id = lab["id"].as_str().unwrap().to_owned();
        assert_eq!(settle(&app, token, &id).await["state"], "running");
        ids.push(id);
    }
    let (status, all) = get_json(&plain(), &app.u("/api/v1/admin/labs"), &admin).await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{all}");
    for (id, owner) in ids.iter().zip(["mona", "nils"]) {
        let item = items
            .iter()
            .find(|i| i["lab"]["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} missing: {all}"));
        assert_eq!(item["owner"], owner);
        assert_eq!(item["zone"], "local");
        assert_eq!(item["lab"]["state"], "running");
        assert!(item["age_seconds"].as_i64().unwrap() >= 0, "{item}");
        assert!(item["idle_seconds"].as_u64().is_some(), "{item}");
        // Where control groups enforce limits (the test command requires
        // them), what the lab uses is known.
        let required = std::env::var("INSITU_REQUIRE_ISOLATION").as_deref() == Ok("1");
        if required || !item["memory_limit_bytes"].is_null() {
            let used = item["memory_bytes"].as_u64().unwrap();
            let limit = item["memory_limit_bytes"].as_u64().unwrap();
            assert!(used > 1 << 20 && used < limit, "{item}");
            assert!(item["cpu_seconds"].as_f64().unwrap() > 0.0, "{item}");
        }
    }
    // Nobody but an administrator sees or stops them.
    for token in [&mona, &nils] {
        let (status, body) = get_json(&plain(), &app.u("/api/v1/admin/labs"), token).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
        let r = plain()
            .post(app.u(&format!("/api/v1/admin/labs/{}/stop", ids[0])))
            .bearer_auth(token)
            .json(&json!({"reason": "mine now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    // A stop needs a reason; an unknown lab is not found.
    for (id, body, expected) in [
        (
            ids[0].as_str(),
            json!({"reason": "  "}),
            (422, "reason_required"),
        ),
        (ids[0].as_str(), json!({}), (422, "invalid_request")),
        (
            "000000000000",
            json!({"reason": "x"}),
            (404, "lab_not_found"),
        ),
    ] {
        let r = plain()
            .post(app.u(&format!("/api/v1/admin/labs/{id}/stop")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!((status, e["code"].as_str().unwrap()), expected, "{e}");
    }
    let r = plain()
        .post(app.u(&format!("/api/v1/admin/labs/{}/stop", ids[0])))
        .bearer_auth(&admin)
        .json(&json!({"reason": "the node is drained for maintenance at 18:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Its user reads who stopped it and why; its tool is gone.
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{}", ids[0])), &mona).await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    let reason = lab["reason"].as_str().unwrap();
    assert!(
        reason.contains("stopped by the operator olga")
            && reason.contains("the node is drained for maintenance at 18:00"),
        "{reason}"
    );
    assert!(tool_pids(&ids[0]).is_empty());
    // The CLI lists the same for an administrator, and stops with a reason.
    let work = tempfile::tempdir().unwrap();
    let (code, out, err) =
        crate::runs::insitu(&app, &admin, work.path(), &["labs", "all", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["owner"], "nils");
    let (code, _, err) = crate::runs::insitu(&app, &mona, work.path(), &["labs", "all"]).await;
    assert!(code != 0 && err.contains("forbidden"), "{code}: {err}");
    // The console's page lists the other lab and stops it the same way;
    // a user's session gets no such page.
    let console = app.login("olga", PASSWORD).await;
    let page = console
        .client
        .get(app.u("/admin/labs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("lab-{}", ids[1])) && page.contains("nils"),
        "{page}"
    );
    assert!(!page.contains(&format!("lab-{}", ids[0])), "{page}");
    let user_page = app
        .login("mona", PASSWORD)
        .await
        .client
        .get(app.u("/admin/labs"))
        .send()
        .await
        .unwrap();
    assert_eq!(user_page.status(), 403);
    let r = console
        .client
        .post(app.u(&format!("/admin/labs/{}/stop", ids[1])))
        .form(&[("csrf", console.csrf.as_str()), ("reason", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{}", ids[1])), &nils).await;
    assert_eq!(lab["state"], "running", "no reason, no stop: {lab}");
    let (_, all) = get_json(&plain(), &app.u("/api/v1/admin/labs"), &admin).await;
    let left: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lab"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [ids[1].as_str()]);
    let r = console
        .client
        .post(app.u(&format!("/admin/labs/{}/stop", ids[1])))
        .form(&[
            ("csrf", console.csrf.as_str()),
            ("reason", "over the team's quota"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{}", ids[1])), &nils).await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    assert!(
        lab["reason"]
            .as_str()
            .unwrap()
            .contains("stopped by the operator olga: over the team's quota"),
        "{lab}"
    );
    // And from the CLI.
    let (status, lab) = launch(&app, &mona, "testapp", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    settle(&app, &mona, &id).await;
    let (code, out, err) = crate::runs::insitu(
        &app,
        &admin,
        work.path(),
        &["labs", "stop", &id, "--reason", "security update"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("lab {id} stopped"))
            && out.contains("stopped by the operator olga: security update"),
        "{out}"
    );
}
