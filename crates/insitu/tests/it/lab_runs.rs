//! Pipelines from a lab: code running in a real lab (the test web app,
//! doing as told) submits a run over the lab's API socket, follows it to
//! its end and reads its log there, the CLI in the lab lists it, and its
//! owner finds it through the platform's API like any other run of
//! theirs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::labs::{launch, settle};
use crate::lifecycle::{id_of, open_lab};
use crate::runs::{
    engine_available, finish, pipelines_config, push_shout, with_pipelines, workspace, write_flag,
};

/// What the lab's tool got sending `method target` (with `body`) over its
/// API socket, or over `socket` when given: `(status, body)`, or the
/// error's text as `Err`.
pub(crate) async fn from_lab(
    client: &reqwest::Client,
    base: &str,
    request: &str,
    body: Option<&Value>,
    socket: Option<&str>,
) -> Result<(u16, Value), String> {
    let mut query = vec![("api", request.to_owned())];
    if let Some(b) = body {
        query.push(("body", b.to_string()));
    }
    if let Some(s) = socket {
        query.push(("socket", s.to_owned()));
    }
    let url = reqwest::Url::parse_with_params(base, &query).unwrap();
    let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    let api = &page["api"];
    match api.get("error") {
        Some(e) => Err(e.as_str().unwrap().to_owned()),
        None => {
            let text = api["body"].as_str().unwrap();
            let body = serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()));
            Ok((api["status"].as_u64().unwrap() as u16, body))
        }
    }
}

/// Launches the test web app for the user and opens it.
pub(crate) async fn running_lab(
    app: &impl Server,
    token: &str,
) -> (String, reqwest::Client, String) {
    let (status, lab) = launch(app, token, "testapp", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = id_of(&lab);
    assert_eq!(settle(app, token, &id).await["state"], "running");
    let (client, base) = open_lab(app, token, &id).await;
    (id, client, base)
}

#[tokio::test]
async fn a_notebook_submits_a_run_over_its_socket_and_follows_it_to_the_end() {
    if !engine_available() {
        return;
    }
    for db in backends() {
        let app = spawn_with(with_pipelines(db, pipelines_config)).await;
        let token = app.user_with_role("ada", "user").await;
        push_shout(&app, &token).await;
        let (_lab, client, base) = running_lab(&app, &token).await;
        // Written once the lab has laid the workspace out as its home.
        let flag = write_flag(&app, "ada", "ok");

        // The lab is told where its socket is; nothing secret comes along.
        let page: Value = client
            .get(&base)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["api_socket"], "/run/insitu/api.sock", "{page}");

        // The catalogue, then a run, as a notebook would ask for them.
        let (status, list) = from_lab(&client, &base, "GET /api/v1/pipelines", None, None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{list}");
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "shout"),
            "{list}"
        );
        let job = json!({"pipeline": "ada/shout", "job": {"words": ["lab", "run"], "flag": flag}});
        let (status, run) = from_lab(&client, &base, "POST /api/v1/runs", Some(&job), None)
            .await
            .unwrap();
        assert_eq!(status, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();

        // Followed from the lab, long-polling, to its end.
        let start = Instant::now();
        let mut seen = 0;
        let run = loop {
            let (status, run) = from_lab(
                &client,
                &base,
                &format!("GET /api/v1/runs/{id}?since={seen}&wait=5"),
                None,
                None,
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{run}");
            if ["succeeded", "failed", "cancelled"].contains(&run["state"].as_str().unwrap()) {
                break run;
            }
            seen = run["events_seen"].as_u64().unwrap();
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "run still {run}"
            );
        };
        assert_eq!(run["state"], "succeeded", "{run}");
        let (status, log) = from_lab(
            &client,
            &base,
            &format!("GET /api/v1/runs/{id}/logs"),
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{log}");

        // The CLI in the lab's terminal finds the socket by itself.
        let cli = |args: &[&str]| {
            let mut argv = vec![env!("CARGO_BIN_EXE_insitu")];
            argv.extend_from_slice(args);
            reqwest::Url::parse_with_params(&base, &[("exec", json!(argv).to_string())]).unwrap()
        };
        let page: Value = client
            .get(cli(&["runs", "ls", "--json"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ran = &page["exec"];
        assert_eq!(ran["code"], 0, "{ran}");
        assert!(ran["stdout"].as_str().unwrap().contains(&id), "{ran}");
        // What is not pipelines or runs is refused there, saying why.
        let page: Value = client
            .get(cli(&["whoami"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ran = &page["exec"];
        assert_eq!(ran["code"], 4, "{ran}");
        assert!(
            ran["stderr"]
                .as_str()
                .unwrap()
                .contains("not_on_lab_socket"),
            "{ran}"
        );

        // The owner's run, seen through the platform's API, its outputs in
        // the owner's workspace.
        let (status, runs) = get_json(&plain(), &app.u("/api/v1/runs"), &token).await;
        assert_eq!(status, 200, "{runs}");
        assert!(
            runs["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == id.as_str()),
            "{runs}"
        );
        assert_eq!(
            finish(&app, &token, &id, Duration::from_secs(5)).await["state"],
            "succeeded"
        );
        let joined = workspace(&app, "ada").join(format!("runs/{id}/joined.txt"));
        assert_eq!(std::fs::read_to_string(joined).unwrap(), "LAB\nRUN\n");
    }
}

/// A restarted platform makes a running lab's socket again: the lab asks
/// the same path and is answered, as its owner.
#[tokio::test]
async fn a_labs_socket_answers_again_after_the_platform_restarts() {
    if !engine_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &Options::default()).await;
    pipelines_config(&mut config);
    let mut server = ServerProcess::start(config, dir.path().join("insitu.toml")).await;
    let token = server.user_with_role("ada", "user").await;
    let (id, client, base) = running_lab(&server, &token).await;
    let (status, before) = from_lab(&client, &base, "GET /api/v1/pipelines", None, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{before}");

    for signal in ["TERM", "KILL"] {
        server.end(signal);
        server.start_again().await;
        let (status, lab) =
            get_json(&plain(), &server.u(&format!("/api/v1/labs/{id}")), &token).await;
        assert_eq!(
            (status, lab["state"].as_str()),
            (200, Some("running")),
            "{lab}"
        );
        let (client, base) = open_lab(&server, &token, &id).await;
        let (status, after) = from_lab(&client, &base, "GET /api/v1/pipelines", None, None)
            .await
            .unwrap();
        assert_eq!(status, 200, "after {signal}: {after}");
        assert_eq!(after, before, "after {signal}");
    }
}
