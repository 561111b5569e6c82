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
    assert!(reason.contains("memory limit of 96 MiB"), "{reason}");
    let id = lab["id"].as_str().unwrap();
    let log =
        std::fs::read_to_string(app.dir.path().join(format!("data/labs/{id}/lab.log"))).unwrap();
    assert!(
        log.contains("allocating") && !log.contains("allocated"),
        "{log}"
    );
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
