//! What a lab can reach and use: its user's network namespace, its memory
//! limit, and its own origin on the lab proxy.

use serde_json::Value;

use crate::harness::*;
use crate::labs::{launch, settle};

fn isolation_available() -> bool {
    let ok = std::path::Path::new("/usr/bin/bwrap").exists()
        && std::process::Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var("INSITU_REQUIRE_ISOLATION").as_deref() != Ok("1"),
        "bubblewrap and iproute2 are required"
    );
    if !ok {
        eprintln!("skipping: bubblewrap or iproute2 missing");
    }
    ok
}

async fn launch_running(app: &TestApp, token: &str, datalab: &str) -> Value {
    let (status, lab) = launch(app, token, datalab, &[]).await;
    assert_eq!(status, 202, "{lab}");
    settle(app, token, lab["id"].as_str().unwrap()).await
}

/// Signs `user` in to the lab on the proxy; returns a client holding the
/// lab cookie and the lab's base URL.
async fn open(app: &TestApp, user: &str, id: &str) -> (reqwest::Client, String) {
    let session = app.login(user, PASSWORD).await;
    let r = session.open_lab(app, id).await;
    assert_eq!(r.status(), 303);
    let ticket_url = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let host = ticket_url.host_str().unwrap().to_owned();
    let port = ticket_url.port().unwrap();
    // Names under .localhost are this machine (browsers know it; the
    // system resolver here does not).
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let r = client.get(ticket_url.clone()).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    let base = format!("http://{host}:{port}/labs/{id}/");
    (client, base)
}

async fn probe(client: &reqwest::Client, base: &str, target: &str) -> String {
    let url = reqwest::Url::parse_with_params(base, &[("probe", target)]).unwrap();
    let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    page["probe"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_users_labs_reach_each_other_and_nothing_else() {
    if !isolation_available() {
        return;
    }
    let app = spawn_app().await;
    let ann = app.user_with_role("ann", "user").await;
    let ben = app.user_with_role("ben", "user").await;
    let a1 = launch_running(&app, &ann, "testapp").await;
    let a2 = launch_running(&app, &ann, "testapp").await;
    let b1 = launch_running(&app, &ben, "testapp").await;
    for lab in [&a1, &a2, &b1] {
        assert_eq!(lab["state"], "running", "{lab}");
    }
    let port = |lab: &Value| -> u16 {
        let id = lab["id"].as_str().unwrap();
        let log = std::fs::read_to_string(app.dir.path().join(format!("data/labs/{id}/lab.log")))
            .unwrap();
        log.lines()
            .find_map(|l| {
                l.strip_prefix("webapp listening on ")?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap()
    };
    let (client, base) = open(&app, "ann", a1["id"].as_str().unwrap()).await;
    let a2_url = format!(
        "http://127.0.0.1:{}/labs/{}/",
        port(&a2),
        a2["id"].as_str().unwrap()
    );
    let b1_url = format!(
        "http://127.0.0.1:{}/labs/{}/",
        port(&b1),
        b1["id"].as_str().unwrap()
    );
    assert_eq!(
        probe(&client, &base, &a2_url).await,
        "reached 200",
        "same user"
    );
    assert!(
        probe(&client, &base, &b1_url)
            .await
            .starts_with("unreachable"),
        "another user's lab"
    );
    let platform = format!("{}/healthz", app.url);
    assert!(
        probe(&client, &base, &platform)
            .await
            .starts_with("unreachable"),
        "the platform's own port on the host's loopback"
    );
    // Ben's lab sees none of Ann's.
    let (bclient, bbase) = open(&app, "ben", b1["id"].as_str().unwrap()).await;
    assert!(
        probe(&bclient, &bbase, &a2_url)
            .await
            .starts_with("unreachable")
    );
}

#[tokio::test]
async fn a_tool_beyond_its_memory_limit_fails_and_says_so() {
    if !isolation_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("hog", "user").await;
    let lab = launch_running(&app, &t, "memhog").await;
    assert_eq!(lab["state"], "failed", "{lab}");
    let reason = lab["reason"].as_str().unwrap();
    // Which process, the limit and when.
    assert!(
        reason.starts_with("the tool (python3, pid ")
            && reason.contains(") used more than its memory limit of 96 MiB and was killed at "),
        "{reason}"
    );
    let events = lab["events"].as_array().unwrap_or_else(|| panic!("{lab}"));
    assert!(
        events
            .iter()
            .any(|e| e["tool"] == true && e["command"] == "python3" && e["kind"] == "memory_kill"),
        "the kill is one of the lab's events: {lab}"
    );
    let id = lab["id"].as_str().unwrap();
    let log =
        std::fs::read_to_string(app.dir.path().join(format!("data/labs/{id}/lab.log"))).unwrap();
    assert!(
        log.contains("allocating") && !log.contains("allocated"),
        "{log}"
    );
}

/// A notebook's kernel (here: a child of the test tool) killed for using
/// more than the lab's memory is reported as it happens, on the lab's API
/// and page and in its log, with its command, pid, the limit and the time;
/// the lab runs on, and the report survives a restart of the platform.
#[tokio::test]
async fn a_child_killed_for_memory_is_reported_as_it_happens_and_the_lab_runs_on() {
    if !isolation_available() {
        return;
    }
    let mut app = spawn_app().await;
    // The test web app with a memory limit, added to the catalogue.
    let catalogue = app.dir.path().join("catalogue");
    let testapp = std::fs::read_to_string(catalogue.join("testapp.toml")).unwrap();
    std::fs::write(
        catalogue.join("kidhog.toml"),
        format!("{testapp}[resources]\nmemory = \"96MiB\"\n"),
    )
    .unwrap();
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = app.user_with_role("kid", "user").await;
    let lab = launch_running(&app, &t, "kidhog").await;
    assert_eq!(lab["state"], "running", "{lab}");
    assert!(lab.get("events").is_none(), "nothing happened yet: {lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let (client, base) = open(&app, "kid", &id).await;
    let before = std::time::SystemTime::now();
    let url = reqwest::Url::parse_with_params(&base, &[("allocate", "256")]).unwrap();
    let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["allocated"], -9, "the child was killed: {page}");
    let lab_url = app.u(&format!("/api/v1/labs/{id}"));
    let mut now = Value::Null;
    for _ in 0..100 {
        now = get_json(&plain(), &lab_url, &t).await.1;
        if now.get("events").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(now["state"], "running", "the lab runs on: {now}");
    let events = now["events"].as_array().unwrap_or_else(|| panic!("{now}"));
    assert_eq!(events.len(), 1, "{now}");
    let e = &events[0];
    assert_eq!(
        (
            e["kind"].as_str(),
            e["command"].as_str(),
            e["tool"].as_bool()
        ),
        (Some("memory_kill"), Some("python3"), Some(false)),
        "{e}"
    );
    assert_eq!(e["memory_limit_bytes"], 96 << 20, "{e}");
    let pid = e["pid"].as_u64().unwrap_or_else(|| panic!("{e}"));
    let at = e["at"].as_str().unwrap();
    let unix = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        at > time_rfc3339(unix - 2).as_str(),
        "killed after the request began: {at}"
    );
    let message = e["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "python3 (pid {pid}) was killed at {at} for using more than the lab's memory \
             limit of 96 MiB; the lab runs on"
        )
    );
    let log =
        std::fs::read_to_string(app.dir.path().join(format!("data/labs/{id}/lab.log"))).unwrap();
    assert!(
        log.lines().any(|l| l == format!("[insitu] {message}")),
        "{log}"
    );
    let session = app.login("kid", PASSWORD).await;
    let html = session
        .client
        .get(app.u(&format!("/my-labs/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("python3 (pid {pid}) was killed at {at}")),
        "the lab's page says so: {html}"
    );
    // Kept in the store: the report outlives the platform's process.
    app.restart().await;
    let (_, after) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &t).await;
    assert_eq!(after["state"], "running", "{after}");
    assert_eq!(after["events"], now["events"], "{after}");
    let (_, listed) = get_json(&plain(), &app.u("/api/v1/labs"), &t).await;
    assert_eq!(listed["items"][0]["events"], now["events"], "{listed}");
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
}

/// Unix seconds as the API writes times.
fn time_rfc3339(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap())
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn every_lab_has_an_origin_of_its_own() {
    if !isolation_available() {
        return;
    }
    let app = spawn_with(Options {
        per_lab_origins: true,
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("orla", "user").await;
    let one = launch_running(&app, &t, "testapp").await;
    let two = launch_running(&app, &t, "testapp").await;
    let (id1, id2) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());
    let (client, base) = open(&app, "orla", id1).await;
    assert!(
        base.starts_with(&format!("http://{id1}.localhost:")),
        "{base}"
    );
    let page: Value = client
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["path"], format!("/labs/{id1}/"));
    // The first lab's cookie belongs to its host only: lab two, asked for
    // on its own origin, sees no credential; on lab one's, it is not served
    // at all.
    let port = reqwest::Url::parse(&base).unwrap().port().unwrap();
    let (_, base2) = open(&app, "orla", id2).await;
    assert!(
        base2.starts_with(&format!("http://{id2}.localhost:")),
        "{base2}"
    );
    let both = lab_browser(port, &[id1, id2]);
    // Sign in to lab one only, with this client.
    let session = app.login("orla", PASSWORD).await;
    let link = |id: &str| {
        let (session, app, id) = (&session, &app, id.to_owned());
        async move {
            let r = session.open_lab(app, &id).await;
            r.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    let ticket = link(id1).await;
    assert_eq!(both.get(&ticket).send().await.unwrap().status(), 303);
    let one_page = both.get(format!("http://{id1}.localhost:{port}/labs/{id1}/"));
    assert_eq!(one_page.send().await.unwrap().status(), 200);
    let r = both
        .get(format!("http://{id2}.localhost:{port}/labs/{id2}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = both
        .get(format!("http://{id1}.localhost:{port}/labs/{id2}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421, "lab two on lab one's host");
    assert_eq!(proxy_code(&r.text().await.unwrap()), "lab_wrong_host");
    // A ticket for lab two is redeemed on lab two's host only.
    let ticket = link(id2).await;
    let on_one = ticket.replacen(&format!("//{id2}."), &format!("//{id1}."), 1);
    let r = both.get(&on_one).send().await.unwrap();
    assert_eq!(r.status(), 421, "{on_one}");
    assert_eq!(both.get(&ticket).send().await.unwrap().status(), 303);
}
