//! Attacks on labs, through the lab proxy and around it, with real labs:
//! code in Mallory's lab on the host's network connecting straight to
//! Alice's JupyterLab and websockify; a lab asked for on another lab's
//! host, a ticket redeemed there, and WebSockets opened from a foreign
//! origin through the real proxy; a process serving the port a lab was to
//! serve; and one account flooding the proxy with tickets and sessions.

use std::time::Duration;

use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::running_lab;
use crate::harness::*;
use crate::labs::{launch, sandbox_available, settle};

fn require(what: &str, variable: &str, paths: &[&str]) -> bool {
    let ok = paths.iter().all(|p| std::path::Path::new(p).exists());
    if !ok {
        assert!(
            std::env::var(variable).as_deref() != Ok("1"),
            "{variable}=1 but {what} is missing"
        );
        eprintln!("skipping: {what} is missing");
    }
    ok
}

fn jupyter_available() -> bool {
    let venv = repo_root().join(".venv/bin/jupyter-lab");
    sandbox_available()
        && require(
            "JupyterLab (.venv)",
            "INSITU_REQUIRE_JUPYTER",
            &[venv.to_str().unwrap()],
        )
}

fn desktop_available() -> bool {
    sandbox_available()
        && require(
            "the desktop packages",
            "INSITU_REQUIRE_DESKTOP",
            &["/usr/bin/Xvnc", "/usr/bin/websockify", "/usr/bin/ds9"],
        )
}

/// A sign-in link into the user's lab (a single-use ticket).
async fn ticket(app: &TestApp, token: &str, id: &str) -> String {
    let r = plain()
        .post(app.u(&format!("/api/v1/labs/{id}/open")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A browser signed in to lab `id` on the proxy (shared origin), and the
/// lab's base URL.
async fn enter(app: &TestApp, token: &str, id: &str) -> (reqwest::Client, String) {
    let link = ticket(app, token, id).await;
    let client = browser();
    let r = client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303, "the ticket is redeemed");
    let origin = link.split("/labs/").next().unwrap();
    (client, format!("{origin}/labs/{id}/"))
}

/// The loopback port a running lab's tool listens on, from its command
/// line (JupyterLab's `--port=`, the desktop session's argument).
fn lab_port(lab_id: &str) -> u16 {
    let base = format!("/labs/{lab_id}/");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.contains(&format!("--ServerApp.base_url={base}")) {
            let port = args.iter().find_map(|a| a.strip_prefix("--port="));
            return port.unwrap().parse().unwrap();
        }
        if args.get(3).map(String::as_str) == Some("insitu-desktop") && args.get(5) == Some(&base) {
            return args[4].parse().unwrap();
        }
    }
    panic!("no process serves lab {lab_id}");
}

/// What Mallory's test tool, asked through the proxy, got when it sent
/// `param` (`probe`: a GET; `upgrade`: a WebSocket handshake) to `target`.
async fn from_lab(client: &reqwest::Client, base: &str, param: &str, target: &str) -> String {
    let url = reqwest::Url::parse_with_params(base, &[(param, target)]).unwrap();
    let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    page[param].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_in_another_users_lab_on_the_hosts_network_is_refused_by_the_tools() {
    if !jupyter_available() || !desktop_available() {
        return;
    }
    let app = spawn_with(Options {
        network_host: true,
        ..Options::default()
    })
    .await;
    let alice = app.user_with_role("alice", "user").await;
    let mallory = app.user_with_role("mallory", "user").await;
    let jupyter = running_lab(&app, &alice, "jupyterlab").await;
    let desktop = running_lab(&app, &alice, "ds9").await;
    let attacker = running_lab(&app, &mallory, "testapp").await;
    let (jport, dport) = (lab_port(&jupyter), lab_port(&desktop));
    let (mallory_lab, base) = enter(&app, &mallory, &attacker).await;

    // Mallory's lab shares the host's network: it reaches Alice's ports,
    // and each tool refuses it, for want of the lab's secret.
    let jupyter_api = format!("http://127.0.0.1:{jport}/labs/{jupyter}/api/contents");
    assert_eq!(
        from_lab(&mallory_lab, &base, "probe", &jupyter_api).await,
        "reached 403",
        "JupyterLab without its token"
    );
    let jupyter_ws = format!("http://127.0.0.1:{jport}/labs/{jupyter}/api/events/subscribe");
    let answer = from_lab(&mallory_lab, &base, "upgrade", &jupyter_ws).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let novnc = format!("http://127.0.0.1:{dport}/labs/{desktop}/vnc.html");
    assert_eq!(
        from_lab(&mallory_lab, &base, "probe", &novnc).await,
        "reached 401",
        "websockify's files without the secret"
    );
    let vnc = format!("http://127.0.0.1:{dport}/labs/{desktop}/websockify");
    let answer = from_lab(&mallory_lab, &base, "upgrade", &vnc).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Through the proxy, Alice has both.
    let (client, jbase) = enter(&app, &alice, &jupyter).await;
    let r = client
        .get(format!("{jbase}api/contents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (client, dbase) = enter(&app, &alice, &desktop).await;
    let r = client.get(format!("{dbase}vnc.html")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // And no process of the host holds the secret on its command line.
    let secret_of = |id: &str| {
        std::fs::read_to_string(app.dir.path().join(format!("data/labs/{id}/secret"))).unwrap()
    };
    for id in [&jupyter, &desktop] {
        let secret = secret_of(id);
        let secret = secret.split_whitespace().nth(1).unwrap();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(secret),
                "the secret of {id} is on the command line of {:?}",
                entry.file_name()
            );
        }
    }
}

/// A WebSocket handshake through the proxy at `port`, for `url` on its
/// lab's host, with `cookie` and `origin` (none when `None`); the status
/// of the answer.
async fn websocket_status(port: u16, url: &str, cookie: &str, origin: Option<&str>) -> u16 {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// The proxy's session cookie set by a response, as `name=value`.
fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_labs_host_a_ticket_there_and_foreign_websockets_are_refused() {
    if !jupyter_available() {
        return;
    }
    let app = spawn_with(Options {
        per_lab_origins: true,
        ..Options::default()
    })
    .await;
    let alice = app.user_with_role("alba", "user").await;
    let other = running_lab(&app, &alice, "testapp").await;
    let jupyter = running_lab(&app, &alice, "jupyterlab").await;
    let link = ticket(&app, &alice, &jupyter).await;
    let port = reqwest::Url::parse(&link).unwrap().port().unwrap();
    let client = lab_browser(port, &[&other, &jupyter]);
    let jupyter_origin = format!("http://{jupyter}.localhost:{port}");
    let other_origin = format!("http://{other}.localhost:{port}");

    // The ticket is refused on the other lab's host, and stays good.
    let elsewhere = link.replacen(&jupyter_origin, &other_origin, 1);
    let r = client.get(&elsewhere).send().await.unwrap();
    assert_eq!(r.status(), 421, "{elsewhere}");
    assert_eq!(proxy_code(&r.text().await.unwrap()), "lab_wrong_host");
    let r = client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = set_cookie(&r);
    // The lab is not served on the other lab's host, cookie or not.
    let r = client
        .get(format!("{other_origin}/labs/{jupyter}/api/contents"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);

    // A page of the other lab may not use it: no request from its origin,
    let kernels = format!("{jupyter_origin}/labs/{jupyter}/api/kernels");
    let r = client
        .post(&kernels)
        .header("origin", &other_origin)
        .json(&serde_json::json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(proxy_code(&r.text().await.unwrap()), "lab_origin_forbidden");
    // (the lab's own page may)
    let r = client
        .post(&kernels)
        .header("origin", &jupyter_origin)
        .json(&serde_json::json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let kernel: Value = r.json().await.unwrap();
    let channels = format!(
        "ws://{jupyter}.localhost:{port}/labs/{jupyter}/api/kernels/{}/channels",
        kernel["id"].as_str().unwrap()
    );
    // and no WebSocket from its origin, from another site, or from none.
    for origin in [
        Some(other_origin.as_str()),
        Some("https://evil.example"),
        Some("null"),
        None,
    ] {
        assert_eq!(
            websocket_status(port, &channels, &cookie, origin).await,
            403,
            "{origin:?}"
        );
    }
    assert_eq!(
        websocket_status(port, &channels, &cookie, Some(&jupyter_origin)).await,
        101,
        "the lab's own page"
    );
}

#[tokio::test]
async fn a_lab_whose_port_another_process_serves_fails_and_that_process_learns_nothing() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_with(Options {
        network_host: true,
        ..Options::default()
    })
    .await;
    // A tool that takes a secret but serves nothing: it says where it was
    // to listen, and sleeps.
    let noserve = "title = \"Serves nothing\"\ndescription = \"Never listens\"\nversion = \"1\"\n\
        kind = \"web\"\nlicense = \"MIT\"\n[launch]\n\
        command = [\"python3\", \"-c\", \"import sys, time; print('port', sys.argv[1], flush=True); time.sleep(600)\", \"{port}\"]\n\
        credential = \"bearer\"\n";
    std::fs::write(app.dir.path().join("catalogue/noserve.toml"), noserve).unwrap();
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = app.user_with_role("sam", "user").await;
    let (status, lab) = launch(&app, &t, "noserve", &[]).await;
    assert_eq!(status, 202, "{lab}");
    let id = lab["id"].as_str().unwrap().to_owned();
    // The tool says which port it was given, and serves nothing there:
    // another process of the host takes it and answers as a tool would.
    let log = app.dir.path().join(format!("data/labs/{id}/lab.log"));
    let mut port = None;
    for _ in 0..400 {
        port = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("port ")?.trim().parse::<u16>().ok());
        if port.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let port = port.expect("the tool names its port");
    let impostor = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ears = std::sync::Arc::clone(&heard);
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, _) = impostor.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            ears.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    });
    let lab = settle(&app, &t, &id).await;
    server.abort();
    assert_eq!(lab["state"], "failed", "{lab}");
    let reason = lab["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("port {port}")) && reason.contains("outside the lab"),
        "{reason}"
    );
    let heard = heard.lock().unwrap();
    assert!(
        heard.is_empty(),
        "the platform asked the impostor (and sent it the lab's secret): {heard:?}"
    );
}

#[tokio::test]
async fn tickets_and_sessions_of_one_account_stay_bounded_under_a_flood() {
    if !sandbox_available() {
        return;
    }
    let mut app = spawn_with(Options {
        per_lab_origins: true,
        ..Options::default()
    })
    .await;
    let t = app.user_with_role("flo", "user").await;
    let id = running_lab(&app, &t, "testapp").await;
    let mut links = Vec::new();
    for _ in 0..20 {
        links.push(ticket(&app, &t, &id).await);
    }
    let port = reqwest::Url::parse(&links[0]).unwrap().port().unwrap();
    let page = format!("http://{id}.localhost:{port}/labs/{id}/");
    // Sixteen tickets are kept: the four oldest are void.
    for (n, expected) in [(3, 401), (4, 303), (19, 303), (0, 401)] {
        let r = lab_browser(port, &[&id])
            .get(&links[n])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "ticket {n}");
    }
    // Seventy sign-ins: the newest 64 sessions are kept.
    let mut browsers = Vec::new();
    for _ in 0..70 {
        let b = lab_browser(port, &[&id]);
        let link = ticket(&app, &t, &id).await;
        assert_eq!(b.get(&link).send().await.unwrap().status(), 303);
        browsers.push(b);
    }
    let status = |n: usize| {
        let request = browsers[n].get(&page);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for (n, expected) in [(0, 401), (5, 401), (6, 200), (69, 200)] {
        assert_eq!(status(n).await, expected, "session {n}");
    }
    // The table keeps no more than memory did: after a restart too.
    app.restart().await;
    for (n, expected) in [(5, 401), (6, 200), (69, 200)] {
        assert_eq!(status(n).await, expected, "session {n} after a restart");
    }
}
