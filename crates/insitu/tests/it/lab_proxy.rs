//! The lab proxy wired into the platform: its sessions outlive a restart
//! of the platform, on every backend, and so do their revocations (a
//! stopped lab's, a user's); stopping a lab closes its WebSockets.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::*;
use crate::labs::{launch, settle};

fn sandbox_available() -> bool {
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

async fn running(app: &TestApp, token: &str, datalab: &str) -> String {
    let (status, lab) = launch(app, token, datalab, &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    let lab = settle(app, token, &id).await;
    assert_eq!(lab["state"], "running", "{lab}");
    id
}

/// A sign-in link (a single-use ticket) into lab `id`, on the lab's host.
async fn link(app: &TestApp, token: &str, id: &str) -> reqwest::Url {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/open")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let link = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = reqwest::Url::parse(&link).unwrap();
    assert_eq!(url.host_str(), Some(format!("{id}.localhost").as_str()));
    url
}

/// Signs `client` in to lab `id` with a ticket from the API.
async fn sign_in(app: &TestApp, token: &str, client: &reqwest::Client, id: &str) {
    let link = link(app, token, id).await;
    assert_eq!(client.get(link).send().await.unwrap().status(), 303);
}

/// What lab `id` answers `client` on its own host: status and the proxy's
/// error code, if any.
async fn ask(client: &reqwest::Client, port: u16, id: &str) -> (u16, String) {
    let r = client
        .get(format!("http://{id}.localhost:{port}/labs/{id}/"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, proxy_code(&r.text().await.unwrap()))
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

#[tokio::test]
async fn lab_cookies_outlive_a_restart_and_revoked_ones_stay_refused() {
    if !sandbox_available() {
        return;
    }
    for db in backends() {
        let mut app = spawn_with(Options {
            db,
            per_lab_origins: true,
            ..Options::default()
        })
        .await;
        let ann = app.user_with_role("ann", "user").await;
        let bob = app.user_with_role("bob", "user").await;
        let (kept, stopped) = (
            running(&app, &ann, "testapp").await,
            running(&app, &ann, "testapp").await,
        );
        let bobs = running(&app, &bob, "testapp").await;
        let bob_id = app.handle.platform().labs().route(&bobs).unwrap().owner;
        let port = link(&app, &ann, &kept).await.port().unwrap();
        let anns_browser = lab_browser(port, &[&kept, &stopped]);
        sign_in(&app, &ann, &anns_browser, &kept).await;
        sign_in(&app, &ann, &anns_browser, &stopped).await;
        let bobs_browser = lab_browser(port, &[&bobs]);
        sign_in(&app, &bob, &bobs_browser, &bobs).await;
        for (client, id) in [
            (&anns_browser, &kept),
            (&anns_browser, &stopped),
            (&bobs_browser, &bobs),
        ] {
            assert_eq!(ask(client, port, id).await.0, 200, "{db:?}");
        }

        // Stopping a lab and revoking a user end their sessions at once…
        stop(&app, &ann, &stopped).await;
        app.handle
            .platform()
            .revoke_proxy_sessions(&bob_id)
            .await
            .unwrap();
        let refused = (401, "lab_auth_required".to_owned());
        assert_eq!(ask(&bobs_browser, port, &bobs).await, refused, "{db:?}");

        // …and for good; the other cookies outlive the restart.
        app.restart().await;
        assert_eq!(ask(&anns_browser, port, &kept).await.0, 200, "{db:?}");
        assert_eq!(
            ask(&anns_browser, port, &stopped).await,
            refused,
            "{db:?}: not merely a stopped lab (lab_not_running)"
        );
        assert_eq!(ask(&bobs_browser, port, &bobs).await, refused, "{db:?}");
        // Bob signs in again.
        sign_in(&app, &bob, &bobs_browser, &bobs).await;
        assert_eq!(ask(&bobs_browser, port, &bobs).await.0, 200, "{db:?}");
        stop(&app, &ann, &kept).await;
        stop(&app, &bob, &bobs).await;
    }
}

fn jupyter_available() -> bool {
    let ok = sandbox_available() && repo_root().join(".venv/bin/jupyter-lab").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "JupyterLab is required but .venv/bin/jupyter-lab is missing"
        );
        eprintln!("skipping: JupyterLab is not installed in .venv");
    }
    ok
}

/// A kernel's channels WebSocket in JupyterLab lab `id`, opened through
/// the proxy as the lab's page opens it.
async fn kernel_channels(
    app: &TestApp,
    user: &str,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let opened = crate::jupyter::open(app, user, id).await;
    let origin = opened.base.split("/labs/").next().unwrap().to_owned();
    let r = opened
        .client
        .post(format!("{}api/kernels", opened.base))
        .header("origin", &origin)
        .json(&serde_json::json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let kernel: Value = r.json().await.unwrap();
    let url = format!(
        "{}api/kernels/{}/channels",
        opened.base.replacen("http://", "ws://", 1),
        kernel["id"].as_str().unwrap()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", opened.cookie.parse().unwrap());
    req.headers_mut().insert("origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Waits up to 10 s for the WebSocket to end.
async fn ends<S>(ws: &mut S) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits up to 5 s for the proxy to count `n` WebSockets of lab `id`.
async fn counted(app: &TestApp, id: &str, n: usize) {
    let proxy = app.handle.proxy();
    let start = Instant::now();
    while proxy.open_websockets(id) != n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the proxy counts {} WebSockets of the lab, not {n}",
            proxy.open_websockets(id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_or_stopping_closes_a_labs_websockets() {
    if !jupyter_available() {
        return;
    }
    let app = spawn_app().await;
    let t = app.user_with_role("wes", "user").await;
    let id = running(&app, &t, "jupyterlab").await;
    let user = app.handle.platform().labs().route(&id).unwrap().owner;

    // Revoking the user's sessions closes the WebSocket while the lab runs.
    let mut ws = kernel_channels(&app, "wes", &id).await;
    counted(&app, &id, 1).await;
    app.handle
        .platform()
        .revoke_proxy_sessions(&user)
        .await
        .unwrap();
    assert!(ends(&mut ws).await, "the client sees its WebSocket close");
    counted(&app, &id, 0).await;
    let (_, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), &t).await;
    assert_eq!(lab["state"], "running");

    // Stopping the lab closes the WebSocket of a new session.
    let mut ws = kernel_channels(&app, "wes", &id).await;
    counted(&app, &id, 1).await;
    stop(&app, &t, &id).await;
    assert!(ends(&mut ws).await, "the client sees its WebSocket close");
    counted(&app, &id, 0).await;
}

#[tokio::test]
async fn an_invalid_proxy_url_stops_the_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = insitu_web::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..insitu_web::ServerConfig::default()
    };
    config.proxy.listen = "127.0.0.1:0".parse().unwrap();
    for (url, why) in [
        (
            "https://{lab}.labs.example.org/labs",
            "only scheme, host and port",
        ),
        ("ftp://labs.example.org", "http:// or https://"),
        ("https://{lab}.{lab}.example.org", "only once"),
    ] {
        config.proxy.public_url = Some(url.to_owned());
        let error = match insitu_web::App::build(config.clone()).await {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            error.starts_with("proxy.public_url: ") && error.contains(why),
            "{error}"
        );
    }
}
