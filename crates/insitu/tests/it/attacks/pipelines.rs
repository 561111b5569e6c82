//! Attacks through pipelines: another user's pipelines, runs, logs and
//! outputs; a step reading another user's workspace or the platform's
//! data, or writing a data volume; CWL documents and job orders that
//! reach for host paths outside the user's places, or for a volume
//! restricted to others.

use serde_json::{Value, json};
use std::time::Duration;

use crate::harness::*;
use crate::runs::{
    SHOUT, SHOUT_TOOL, engine_available, finish, pipelines_config, post, push, push_shout, submit,
    with_pipelines, workspace, write_flag,
};

fn code(body: &Value) -> Option<&str> {
    body["code"].as_str()
}

/// Bob sees none of Ada's private pipelines, runs, logs or outputs, and
/// can act on none of them; ids he guesses are "not found", as ids that
/// do not exist.
#[tokio::test]
async fn another_user_sees_nothing_of_a_users_pipelines_and_runs() {
    if !engine_available() {
        return;
    }
    for db in backends() {
        let app = spawn_with(with_pipelines(db, pipelines_config)).await;
        let ada = app.user_with_role("ada", "user").await;
        let bob = app.user_with_role("bob", "developer").await;
        push_shout(&app, &ada).await;
        let flag = write_flag(&app, "ada", "ok");
        let (_, run) = submit(
            &app,
            &ada,
            "ada/shout",
            json!({"words": ["secret"], "flag": flag}),
        )
        .await;
        let id = run["id"].as_str().unwrap().to_owned();
        let run = finish(&app, &ada, &id, Duration::from_secs(120)).await;
        assert_eq!(run["state"], "succeeded", "{run}");

        let (_, list) = get_json(&plain(), &app.u("/api/v1/pipelines"), &bob).await;
        assert!(
            !list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["owner"] == "ada"),
            "{list}"
        );
        for path in [
            "/api/v1/pipelines/ada/shout",
            "/api/v1/pipelines/ada/shout/versions/1.0.0",
        ] {
            let (status, body) = get_json(&plain(), &app.u(path), &bob).await;
            assert_eq!(
                (status, code(&body)),
                (404, Some("pipeline_not_found")),
                "{path}: {body}"
            );
        }
        let (status, body) = submit(
            &app,
            &bob,
            "ada/shout",
            json!({"words": ["x"], "flag": flag}),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (404, Some("pipeline_not_found")),
            "{body}"
        );
        // A developer may push to the system catalogue only their own.
        let (status, body) = post(
            &app,
            &bob,
            "/api/v1/pipelines/ada/shout/versions/1.0.0/push-to-system",
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (404, Some("pipeline_not_found")),
            "{body}"
        );

        let (_, runs) = get_json(&plain(), &app.u("/api/v1/runs"), &bob).await;
        assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");
        let job = run["steps"][0]["jobs"].as_u64().unwrap();
        assert!(job > 0);
        for path in [
            format!("/api/v1/runs/{id}"),
            format!("/api/v1/runs/{id}/jobs"),
            format!("/api/v1/runs/{id}/logs"),
            format!("/api/v1/runs/{id}/logs?job=1"),
            format!("/api/v1/runs/{id}/provenance"),
        ] {
            let (status, body) = get_json(&plain(), &app.u(&path), &bob).await;
            assert_eq!(
                (status, code(&body)),
                (404, Some("run_not_found")),
                "{path}: {body}"
            );
        }
        for action in ["cancel", "resume"] {
            let (status, body) = post(&app, &bob, &format!("/api/v1/runs/{id}/{action}")).await;
            assert_eq!(
                (status, code(&body)),
                (404, Some("run_not_found")),
                "{action}: {body}"
            );
        }
        // Nor through the pages, logged in.
        let bob_pages = app.login("bob", PASSWORD).await;
        for path in ["/pipelines/ada/shout".to_owned(), format!("/runs/{id}")] {
            let r = bob_pages.client.get(app.u(&path)).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path}");
            let page = r.text().await.unwrap();
            assert!(
                !page.contains("secret") && !page.contains("Shouts words"),
                "{page}"
            );
        }
        let r = bob_pages
            .client
            .get(app.u("/pipelines"))
            .send()
            .await
            .unwrap();
        assert!(!r.text().await.unwrap().contains("ada/shout"));
        // Nobody without a credential.
        for path in [
            "/api/v1/pipelines",
            "/api/v1/runs",
            &format!("/api/v1/runs/{id}"),
        ] {
            let r = plain().get(app.u(path)).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
        }
        // Bob's job cannot name Ada's files, by her workspace's host path
        // or by climbing out of his own.
        let host = workspace(&app, "ada").join("flag.txt");
        for path in [
            host.display().to_string(),
            "/home/user/../ada/flag.txt".to_owned(),
        ] {
            let (status, body) = submit(
                &app,
                &bob,
                "source-extraction",
                json!({
                    "images": [{"class": "File", "path": path}],
                }),
            )
            .await;
            assert_eq!(
                (status, code(&body)),
                (422, Some("invalid_job")),
                "{path}: {body}"
            );
        }
    }
}

/// What a step tries from inside its sandbox: another user's workspace,
/// the platform's data directory (database, secrets), writing the data
/// volume it reads or any other. Its output says what it could do.
#[tokio::test]
async fn a_step_cannot_read_another_workspace_nor_write_a_volume() {
    use std::os::unix::fs::PermissionsExt;
    if !engine_available() {
        return;
    }
    // Under the build directory, which sandboxes show read-only like the
    // rest of the host (a directory under /tmp would be out of sight
    // anyway), and readable by everyone: the covers alone stop the step.
    let dir = tempfile::Builder::new()
        .prefix("attack-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let root = dir.path();
    let mut config = test_config(root, &Options::default()).await;
    pipelines_config(&mut config);
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    std::fs::write(root.join("secrets/token.txt"), "operator's secret 9c1e").unwrap();
    config.labs.hidden.push(root.join("secrets"));
    let server = ServerProcess::start(config, root.join("insitu.toml")).await;
    let bob = server.user_with_role("bob", "user").await;
    // Ada's workspace holds a secret (as a run of hers would leave it).
    let data = root.join("data");
    let ada_ws = data.join("workspaces/ada");
    std::fs::create_dir_all(&ada_ws).unwrap();
    std::fs::write(ada_ws.join("flag.txt"), "ada's secret 7f3a").unwrap();
    for d in [
        root.to_path_buf(),
        root.join("secrets"),
        data.clone(),
        data.join("workspaces"),
        ada_ws.clone(),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [
        ada_ws.join("flag.txt"),
        root.join("secrets/token.txt"),
        data.join("insitu.db"),
    ] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let volume = root.join("volumes/deep-fields");
    let image = volume.join("skysim_m31_g.fits");
    let before = std::fs::read(&image).unwrap();
    // Reads are judged by what the step saw; writes by the host
    // afterwards (a step may write its own sandbox's scratch space).
    let script = format!(
        r#"for f in {ada}/flag.txt {data}/insitu.db {secrets}/token.txt; do cat "$f" 2>/dev/null; done
echo "data: $(ls -A {data} 2>/dev/null | tr '\n' ' ')"
echo "ada: $(ls -A {ada} 2>/dev/null | tr '\n' ' ')"
echo x >> "$0" 2>/dev/null && echo "wrote input"
touch "$(dirname "$0")/planted" /media/data/deep-fields/planted {volume}/planted 2>/dev/null
echo done"#,
        ada = ada_ws.display(),
        data = data.display(),
        secrets = root.join("secrets").display(),
        volume = volume.display(),
    );
    let tool = format!(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [sh, -c, {script}]\n\
         inputs:\n  image: {{type: File, inputBinding: {{position: 1}}}}\n\
         stdout: tried.txt\noutputs: {{tried: {{type: stdout}}}}\n",
        script = serde_json::to_string(&script).unwrap(),
    );
    let (status, body) = push(&server, &bob, "snoop", "1", &[("main.cwl", &tool)]).await;
    assert_eq!(status, 201, "{body}");
    let (status, run) = submit(
        &server,
        &bob,
        "bob/snoop",
        json!({
            "image": {"class": "File", "path": "/media/data/deep-fields/skysim_m31_g.fits"},
        }),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&server, &bob, &id, Duration::from_secs(120)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let tried =
        std::fs::read(data.join("workspaces/bob/runs").join(&id).join("tried.txt")).unwrap();
    let tried = String::from_utf8_lossy(&tried);
    assert!(
        !tried.contains("7f3a") && !tried.contains("9c1e") && !tried.contains("SQLite"),
        "{tried}"
    );
    assert!(!tried.contains("wrote input"), "{tried}");
    // The data directory is an empty cover, but for the way to the
    // step's own job directory; Ada's workspace is in it, so not there.
    let listed = |what: &str| {
        tried
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .unwrap_or_else(|| panic!("{what} in {tried}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(listed("data:").iter().all(|e| e == "runs"), "{tried}");
    assert!(listed("ada:").is_empty(), "{tried}");
    assert!(tried.ends_with("done\n"), "{tried}");
    assert_eq!(
        std::fs::read(&image).unwrap(),
        before,
        "the volume's file is unchanged"
    );
    assert!(!volume.join("planted").exists());
}

/// CWL documents that `$import` or `$include` a host file, or `run` a
/// tool outside the pipeline, are refused; so is a job whose file
/// `location` is outside the user's places, and a default that names one
/// fails the run without reading it.
#[tokio::test]
async fn documents_and_inputs_reaching_outside_the_users_places_are_refused() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, pipelines_config)).await;
    let bob = app.user_with_role("bob", "user").await;
    write_flag(&app, "ada", "ada's secret 7f3a");
    let secret = workspace(&app, "ada")
        .join("flag.txt")
        .display()
        .to_string();
    let config = app.dir.path().join("data").display().to_string();
    let include = |path: &str| {
        format!(
            "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [cat, leak.txt]\n\
             requirements:\n  InitialWorkDirRequirement:\n    listing:\n      - entryname: leak.txt\n\
             \x20       entry:\n          $include: {path}\n\
             inputs: {{}}\nstdout: out.txt\noutputs: {{out: {{type: stdout}}}}\n"
        )
    };
    let import = |path: &str| {
        format!(
            "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [echo]\n\
             inputs:\n  $import: {path}\noutputs: {{}}\n"
        )
    };
    let run_elsewhere = |path: &str| {
        format!(
            "cwlVersion: v1.2\nclass: Workflow\ninputs: {{}}\noutputs: {{}}\n\
             steps:\n  s:\n    run: {path}\n    in: {{}}\n    out: []\n"
        )
    };
    let other_tool = repo_root().join("catalogue/pipelines/source-extraction/extract.cwl");
    let cases = [
        include("/etc/passwd"),
        include(&secret),
        include("../../../../../../etc/passwd"),
        import("/etc/passwd"),
        import(&format!("{config}/insitu.db")),
        run_elsewhere(&other_tool.display().to_string()),
        run_elsewhere("../../../../../../etc/passwd"),
        run_elsewhere("file:///etc/passwd"),
    ];
    for (i, doc) in cases.iter().enumerate() {
        let (status, body) =
            push(&app, &bob, &format!("reach{i}"), "1", &[("main.cwl", doc)]).await;
        assert_eq!(
            (status, code(&body)),
            (422, Some("invalid_cwl")),
            "{doc}: {body}"
        );
        let text = body.to_string();
        assert!(
            !text.contains("root:x:0") && !text.contains("7f3a"),
            "{body}"
        );
    }

    // A default naming a host file: accepted as CWL, the run fails
    // without reading it.
    let tool = format!(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [cat]\n\
         inputs:\n  f: {{type: File, default: {{class: File, location: 'file://{secret}'}}, inputBinding: {{position: 1}}}}\n\
         stdout: out.txt\noutputs: {{out: {{type: stdout}}}}\n"
    );
    let (status, body) = push(&app, &bob, "defaulted", "1", &[("main.cwl", &tool)]).await;
    assert_eq!(status, 201, "{body}");
    let (status, run) = submit(&app, &bob, "bob/defaulted", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finish(&app, &bob, &id, Duration::from_secs(60)).await;
    assert_eq!(run["state"], "failed", "{run}");
    let out = workspace(&app, "bob")
        .join("runs")
        .join(&id)
        .join("out.txt");
    assert!(std::fs::read_to_string(out).unwrap_or_default().is_empty());
    let (_, log) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{id}/logs")), &bob).await;
    assert!(!log.to_string().contains("7f3a"), "{log}");
    assert!(
        log["text"].as_str().unwrap().contains("outside"),
        "the engine says why: {log}"
    );
    // Job orders naming files outside Bob's places, every way.
    push(
        &app,
        &bob,
        "shout",
        "1",
        &[("main.cwl", SHOUT), ("shout.cwl", SHOUT_TOOL)],
    )
    .await;
    for file in [
        json!({"class": "File", "location": format!("file://{secret}")}),
        json!({"class": "File", "path": secret}),
        json!({"class": "File", "location": "file:///home/user/../../../etc/passwd"}),
        json!({"class": "File", "location": "http://127.0.0.1:1/x"}),
        json!({"class": "File", "contents": "x", "location": "/etc/shadow"}),
    ] {
        let (status, body) = submit(
            &app,
            &bob,
            "bob/shout",
            json!({"words": ["a"], "flag": file}),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (422, Some("invalid_job")),
            "{file}: {body}"
        );
    }
}

/// A data volume restricted to Ada, holding `flag.txt`.
fn adas_volume(source: &std::path::Path) -> insitu_domain::volume::VolumeConfig {
    insitu_domain::volume::VolumeConfig {
        name: "ada-survey".to_owned(),
        title: "Ada's survey".to_owned(),
        description: "Proprietary frames".to_owned(),
        source: source.to_path_buf(),
        mount_path: None,
        zone: None,
        metadata: Default::default(),
        visible_to: Some(vec!["user:ada".to_owned()]),
    }
}

/// Submits Bob's shout naming `flag.txt` on `volume`, which must be
/// refused as an invalid job; returns the refusal's message.
async fn refusal(app: &TestApp, bob: &str, volume: &str, as_location: bool) -> String {
    let path = format!("/media/data/{volume}/flag.txt");
    let file = if as_location {
        json!({"class": "File", "location": format!("file://{path}")})
    } else {
        json!({"class": "File", "path": path})
    };
    let (status, body) = submit(app, bob, "bob/shout", json!({"words": ["a"], "flag": file})).await;
    assert_eq!(
        (status, code(&body)),
        (422, Some("invalid_job")),
        "{volume}: {body}"
    );
    body["message"].as_str().unwrap().to_owned()
}

/// A job naming a file on a data volume restricted to someone else is
/// refused as a path on no volume at all: the refusal says no more than
/// it says for a volume that does not exist, and nothing is queued. The
/// volume's audience runs the same job.
#[tokio::test]
async fn a_job_cannot_name_a_file_on_a_volume_restricted_to_others() {
    use std::os::unix::fs::PermissionsExt;
    if !engine_available() {
        return;
    }
    // Readable by the tools' unprivileged user, as a volume must be.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("ada-survey");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("flag.txt"), "ada's secret 7f3a").unwrap();
    for d in [dir.path(), &source] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        source.join("flag.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for db in backends() {
        let app = spawn_with(Options {
            extra_volumes: vec![adas_volume(&source)],
            ..with_pipelines(db, pipelines_config)
        })
        .await;
        let ada = app.user_with_role("ada", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        push_shout(&app, &ada).await;
        push_shout(&app, &bob).await;

        for as_location in [false, true] {
            let hidden = refusal(&app, &bob, "ada-survey", as_location).await;
            let unknown = refusal(&app, &bob, "no-such-survey", as_location).await;
            assert_eq!(
                hidden.replace("ada-survey", "no-such-survey"),
                unknown,
                "{db:?}: the refusal tells the volume apart from none"
            );
            assert!(!hidden.contains("7f3a"), "{hidden}");
        }
        let (_, runs) = get_json(&plain(), &app.u("/api/v1/runs"), &bob).await;
        assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");

        // Ada, its audience, runs the same job.
        let (status, run) = submit(
            &app,
            &ada,
            "ada/shout",
            json!({
                "words": ["a"],
                "flag": {"class": "File", "path": "/media/data/ada-survey/flag.txt"},
            }),
        )
        .await;
        assert_eq!(status, 202, "{db:?}: {run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let run = finish(&app, &ada, &id, Duration::from_secs(120)).await;
        assert_eq!(run["state"], "succeeded", "{db:?}: {run}");
        let joined = workspace(&app, "ada")
            .join("runs")
            .join(&id)
            .join("joined.txt");
        assert_eq!(std::fs::read_to_string(joined).unwrap(), "A\n", "{db:?}");
    }
}
