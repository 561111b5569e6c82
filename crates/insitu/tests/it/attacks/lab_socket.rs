//! Attacks on and through a lab's API socket: code in the lab asking it
//! for more than pipelines and runs (accounts, labs, tokens, pushing to
//! the catalogue), even for an administrator's lab; another user's lab
//! reaching for it; a run submitted there escaping its owner's limits; a
//! socket outliving its lab or its owner's account.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::lab_runs::{from_lab, running_lab};
use crate::runs::{
    engine_available, pipelines_config, post, push, sleepy, submit, wait_until, with_pipelines,
};

fn limited(config: &mut insitu_web::ServerConfig) {
    pipelines_config(config);
    config.pipelines.max_running_per_user = 1;
    config.pipelines.max_queued_per_user = 1;
}

async fn run_state(app: &TestApp, token: &str, id: &str) -> String {
    let (_, run) = get_json(&plain(), &app.u(&format!("/api/v1/runs/{id}")), token).await;
    run["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_labs_socket_serves_its_owner_only_runs_and_ends_with_the_lab() {
    if !engine_available() {
        return;
    }
    let app = spawn_with(with_pipelines(Db::Sqlite, limited)).await;
    // An administrator: what the socket refuses, it refuses as the socket,
    // not for want of a role.
    let ada = app.user_with_role("ada", "admin").await;
    let bob = app.user_with_role("bob", "user").await;
    let (ada_lab, ada_client, ada_base) = running_lab(&app, &ada).await;
    let (bob_lab, bob_client, bob_base) = running_lab(&app, &bob).await;

    // Nothing but pipelines and runs, whatever the lab sends along.
    for (request, body) in [
        ("GET /api/v1/admin/users", None),
        (
            "PATCH /api/v1/admin/users/bob",
            Some(json!({"disabled": true})),
        ),
        ("POST /api/v1/labs", Some(json!({"datalab": "testapp"}))),
        (&format!("POST /api/v1/labs/{bob_lab}/stop"), None),
        ("POST /api/v1/me/tokens", Some(json!({"name": "stolen"}))),
        ("GET /api/v1/me", None),
        ("GET /api/v1/datalabs", None),
        ("GET /pipelines", None),
        ("GET /runs", None),
        (
            "POST /api/v1/pipelines",
            Some(json!({"name": "x", "version": "1", "main": "a.cwl", "files": {}})),
        ),
        (
            "POST /api/v1/pipelines/system/x/versions/1/push-to-system",
            None,
        ),
    ] {
        let (status, answer) = from_lab(&ada_client, &ada_base, request, body.as_ref(), None)
            .await
            .unwrap_or_else(|e| panic!("{request}: {e}"));
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("not_on_lab_socket")),
            "{request}: {answer}"
        );
    }
    let (status, _) = get_json(&plain(), &app.u("/api/v1/me"), &bob).await;
    assert_eq!(status, 200, "bob was not disabled");

    // A run submitted in the lab is its owner's, within their limits: one
    // running and one queued already, a third is refused.
    let (status, body) = push(&app, &ada, "nap", "1.0.0", &[("nap.cwl", &sleepy(3917))]).await;
    assert_eq!(status, 201, "{body}");
    let (status, first) = submit(&app, &ada, "ada/nap", json!({})).await;
    assert_eq!(status, 202, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();
    wait_until("the first run runs", Duration::from_secs(60), async || {
        run_state(&app, &ada, &first).await == "running"
    })
    .await;
    let job = json!({"pipeline": "ada/nap", "job": {}});
    let (status, second) = from_lab(
        &ada_client,
        &ada_base,
        "POST /api/v1/runs",
        Some(&job),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    assert_eq!(run_state(&app, &ada, &second).await, "queued");
    let (status, third) = from_lab(
        &ada_client,
        &ada_base,
        "POST /api/v1/runs",
        Some(&job),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (status, third["code"].as_str()),
        (409, Some("run_quota_exceeded")),
        "{third}"
    );
    // Ada's runs in her list; none in Bob's, asked from his lab, and
    // Ada's run is not found there.
    let (_, mine) = get_json(&plain(), &app.u("/api/v1/runs"), &ada).await;
    let ids: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(ids.contains(&second.as_str()), "{mine}");
    let (status, his) = from_lab(&bob_client, &bob_base, "GET /api/v1/runs", None, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{his}");
    assert_eq!(his["items"], json!([]), "{his}");
    let (status, hers) = from_lab(
        &bob_client,
        &bob_base,
        &format!("GET /api/v1/runs/{second}"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{hers}");
    let (status, cancel) = from_lab(
        &bob_client,
        &bob_base,
        &format!("POST /api/v1/runs/{first}/cancel"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{cancel}");
    // Ada cancels hers from her lab.
    for id in [&second, &first] {
        let (status, run) = from_lab(
            &ada_client,
            &ada_base,
            &format!("POST /api/v1/runs/{id}/cancel"),
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{run}");
    }

    // Bob's lab sees its own socket alone, and Ada's is nowhere in it.
    let data = app.config().data_dir.clone();
    let ada_socket = data.join(format!("labs/{ada_lab}/api/api.sock"));
    assert!(ada_socket.exists(), "Ada's socket is on the host");
    let page: Value = bob_client
        .get(reqwest::Url::parse_with_params(&bob_base, &[("list", "/run/insitu")]).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["files"]["list"], json!(["api.sock"]), "{page}");
    let reached = from_lab(
        &bob_client,
        &bob_base,
        "GET /api/v1/runs",
        None,
        Some(&ada_socket.display().to_string()),
    )
    .await;
    assert!(
        reached
            .as_ref()
            .is_err_and(|e| e.starts_with("FileNotFoundError")),
        "{reached:?}"
    );
    // On the host, only the lab's user may connect.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ada_socket), 0o600);
    assert_eq!(mode(ada_socket.parent().unwrap()), 0o700);

    // Stopped, the lab's socket is gone.
    let (status, stopped) = post(&app, &ada, &format!("/api/v1/labs/{ada_lab}/stop")).await;
    assert_eq!(status, 200, "{stopped}");
    assert!(!ada_socket.exists(), "the socket went with the lab");
    assert!(std::os::unix::net::UnixStream::connect(&ada_socket).is_err());

    // Disabled, a user's lab stops and its socket with it.
    let bob_socket = data.join(format!("labs/{bob_lab}/api/api.sock"));
    assert!(std::os::unix::net::UnixStream::connect(&bob_socket).is_ok());
    let r = plain()
        .patch(app.u("/api/v1/admin/users/bob"))
        .bearer_auth(&ada)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until("Bob's socket goes", Duration::from_secs(30), async || {
        !bob_socket.exists()
    })
    .await;
    assert!(std::os::unix::net::UnixStream::connect(&bob_socket).is_err());
}
