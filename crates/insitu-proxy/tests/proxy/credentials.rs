//! A lab's own credential: the proxy presents it on every request and
//! WebSocket upgrade, in the tool's form, in place of whatever the browser
//! sends, and never lets it out.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use insitu_proxy::{LabCredential, LabRoute, LabSecret, LabState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{LAB, OWNER, Rig, Upstream, closed_port, echo, open_websocket};

const SECRET: &str = "s3cr3t-0123456789abcdef0123456789abcdef";

fn secret() -> LabSecret {
    LabSecret::new(SECRET).unwrap()
}

/// A rig whose lab requires `token <SECRET>`, as JupyterLab does.
async fn guarded_rig() -> (Rig, Upstream) {
    let rig = Rig::start().await;
    let guarded = Upstream::start_guarded(&format!("token {SECRET}")).await;
    rig.directory.set_credential(
        LAB,
        guarded.addr,
        OWNER,
        Some(LabCredential::jupyter_token(&secret())),
    );
    (rig, guarded)
}

#[tokio::test]
async fn the_labs_credential_replaces_the_browsers() {
    let (rig, _guarded) = guarded_rig().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    for sent in [
        None,
        Some("token guessed"),
        Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
        Some("Bearer insitu_platform_token"),
    ] {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(sent.map(|s| ("authorization", s)));
        let reply = rig
            .send(Method::POST, "/labs/lab-1/api/contents", &headers, "{}")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{sent:?}: {}", reply.text());
        let expected = format!("token {SECRET}");
        assert_eq!(
            reply.json()["headers"]["authorization"],
            serde_json::json!([expected]),
            "exactly the lab's credential, whatever the browser sent ({sent:?})"
        );
    }
}

#[tokio::test]
async fn websocket_upgrades_carry_the_credential() {
    let (rig, _guarded) = guarded_rig().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let origin = format!("http://{}", rig.addr);
    let mut socket = open_websocket(
        &rig,
        "/labs/lab-1/api/events/ws",
        &[
            ("cookie", &cookie),
            ("origin", &origin),
            ("authorization", "token guessed"),
        ],
    )
    .await
    .expect("the guarded lab accepts the upgrade");
    echo(&mut socket, Message::text("authenticated")).await;
}

#[tokio::test]
async fn a_lab_that_requires_a_secret_refuses_requests_without_it() {
    // The same guarded lab, routed without the credential: refused by the
    // lab itself. With a wrong one, too, and the challenge stays with the
    // proxy (a browser would prompt for a password nobody knows).
    let (rig, guarded) = guarded_rig().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    rig.directory.set_credential(LAB, guarded.addr, OWNER, None);
    let reply = rig
        .get("/labs/lab-1/api/status", &[("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.text(), "denied");

    let other = LabSecret::generate();
    rig.directory.set_credential(
        LAB,
        guarded.addr,
        OWNER,
        Some(LabCredential::jupyter_token(&other)),
    );
    let reply = rig
        .get("/labs/lab-1/api/status", &[("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.header("www-authenticate").is_none());

    // Straight to the lab, without the proxy: refused.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client
        .get(
            format!("http://{}/labs/lab-1/api/status", guarded.addr)
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Collects everything logged, at every level, by every thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_secret_never_comes_back() {
    let logs = Logs::default();
    let writer = logs.clone();
    // nextest runs each test in a process of its own: the global
    // subscriber sees the proxy's threads and only this test.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();

    let (rig, guarded) = guarded_rig().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let mut seen = Vec::new();
    let ok = rig.get("/labs/lab-1/", &[("cookie", &cookie)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    // The lab refusing a wrong credential, the lab unreachable, starting,
    // stopped, a redirect.
    let wrong = LabCredential::jupyter_token(&LabSecret::generate());
    rig.directory
        .set_credential(LAB, guarded.addr, OWNER, Some(wrong));
    seen.push(rig.get("/labs/lab-1/x", &[("cookie", &cookie)]).await);
    let credential = LabCredential::jupyter_token(&secret());
    rig.directory
        .set_credential(LAB, closed_port().await, OWNER, Some(credential.clone()));
    seen.push(rig.get("/labs/lab-1/x", &[("cookie", &cookie)]).await);
    seen.push(rig.get("/labs/lab-1", &[("cookie", &cookie)]).await);
    seen.push(rig.get("/labs/lab-1/x", &[]).await);
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    seen.push(
        rig.get(&format!("/labs/lab-1/_insitu/auth?ticket={ticket}"), &[])
            .await,
    );
    for reply in &seen {
        let head = format!("{:?}", reply.headers);
        assert!(!head.contains(SECRET), "{head}");
        assert!(!reply.text().contains(SECRET), "{}", reply.text());
    }
    let route = LabRoute {
        upstream: guarded.addr,
        network: None,
        owner: OWNER.into(),
        shared_with: Vec::new(),
        state: LabState::Running,
        credential: Some(credential),
    };
    let shown = format!("{route:?} {:?} {:?}", secret(), rig.proxy);
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("LabCredential(token ..)"), "{shown}");
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("lab upstream unreachable"),
        "the log was captured: {logged}"
    );
    assert!(!logged.contains(SECRET), "{logged}");
}

/// A TCP echo server, standing for the VNC server behind websockify.
async fn tcp_echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Whether `websocket` can be used, or must be for this run.
fn websockify_available() -> bool {
    let ok = std::path::Path::new("/usr/bin/websockify").exists();
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_DESKTOP").as_deref() != Ok("1"),
            "websockify is required but missing (scripts/deps.sh installs it)"
        );
        eprintln!("skipping: websockify is not installed");
    }
    ok
}

/// Debian's websockify, as a desktop lab starts it, with its Basic-auth
/// plugin: it serves files and the VNC bridge only to the proxy.
#[tokio::test]
async fn websockify_serves_only_requests_with_the_basic_credential() {
    if !websockify_available() {
        return;
    }
    let rig = Rig::start().await;
    let web = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(web.path().join("labs/lab-1")).unwrap();
    std::fs::write(web.path().join("labs/lab-1/vnc.html"), "noVNC here").unwrap();
    let vnc = tcp_echo().await;
    let port = closed_port().await.port();
    let secret = LabSecret::generate();
    let mut child = tokio::process::Command::new("/usr/bin/websockify")
        .arg("--web")
        .arg(web.path())
        .args([
            "--web-auth",
            "--auth-plugin",
            "BasicHTTPAuth",
            "--auth-source",
        ])
        .arg(format!("insitu:{}", secret.expose()))
        .arg(format!("127.0.0.1:{port}"))
        .arg(vnc.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let bridge = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut up = false;
    for _ in 0..100 {
        if TcpStream::connect(bridge).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "websockify listens");

    // Straight to websockify: refused, files and upgrades alike.
    let mut direct = TcpStream::connect(bridge).await.unwrap();
    let (status, _) = crate::support::raw_exchange(
        &mut direct,
        &format!("GET /labs/lab-1/vnc.html HTTP/1.1\r\nHost: {bridge}\r\n\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);

    rig.directory.set_credential(
        LAB,
        bridge,
        OWNER,
        Some(LabCredential::basic("insitu", &secret).unwrap()),
    );
    let cookie = rig.sign_in(LAB, OWNER).await;
    let page = rig
        .get("/labs/lab-1/vnc.html", &[("cookie", &cookie)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(page.text(), "noVNC here");

    let origin = format!("http://{}", rig.addr);
    let mut socket = open_websocket(
        &rig,
        "/labs/lab-1/websockify",
        &[
            ("cookie", &cookie),
            ("origin", &origin),
            ("sec-websocket-protocol", "binary"),
        ],
    )
    .await
    .expect("websockify accepts the proxy's upgrade");
    socket
        .send(Message::binary(b"RFB 003.008\n".to_vec()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_data().as_ref(), b"RFB 003.008\n");

    // Without the credential the bridge refuses the proxy too, and its
    // challenge is passed on only because the route has no credential.
    rig.directory.set_credential(LAB, bridge, OWNER, None);
    let refused = rig
        .get("/labs/lab-1/vnc.html", &[("cookie", &cookie)])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    child.kill().await.unwrap();
}

/// The workspace's JupyterLab (`.venv`), as the JupyterLab datalab starts
/// it but with its token set: only the proxy, which presents the token,
/// gets in.
#[tokio::test]
async fn jupyterlab_serves_only_requests_with_the_token() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let jupyter = root.join(".venv/bin/jupyter-lab");
    if !jupyter.exists() {
        assert!(
            std::env::var("INSITU_REQUIRE_JUPYTER").as_deref() != Ok("1"),
            "JupyterLab is required but .venv/bin/jupyter-lab is missing"
        );
        eprintln!("skipping: JupyterLab is not installed in .venv");
        return;
    }
    let rig = Rig::start().await;
    let home = tempfile::tempdir().unwrap();
    let port = closed_port().await.port();
    let secret = LabSecret::generate();
    let mut child = tokio::process::Command::new(&jupyter)
        .args([
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            &format!("--port={port}"),
            "--ServerApp.base_url=/labs/lab-1/",
            "--ServerApp.allow_remote_access=True",
        ])
        .arg(format!("--ServerApp.root_dir={}", home.path().display()))
        .env("JUPYTER_TOKEN", secret.expose())
        .env("HOME", home.path())
        .env("JUPYTER_CONFIG_DIR", home.path().join(".jupyter"))
        .env("JUPYTER_DATA_DIR", home.path().join("data"))
        .env("JUPYTER_RUNTIME_DIR", home.path().join("runtime"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lab = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let status_of = |response: Option<(u16, String)>| response.map(|(status, _)| status);
    let mut direct = None;
    for _ in 0..600 {
        if let Ok(mut stream) = TcpStream::connect(lab).await {
            direct = status_of(
                crate::support::raw_exchange(
                    &mut stream,
                    &format!("GET /labs/lab-1/api/status HTTP/1.1\r\nHost: {lab}\r\n\r\n"),
                )
                .await,
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        direct,
        Some(403),
        "JupyterLab refuses a request without the token"
    );

    rig.directory
        .set_credential(LAB, lab, OWNER, Some(LabCredential::jupyter_token(&secret)));
    let cookie = rig.sign_in(LAB, OWNER).await;
    let reply = rig
        .get("/labs/lab-1/api/status", &[("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let origin = format!("http://{}", rig.addr);
    let socket = open_websocket(
        &rig,
        "/labs/lab-1/api/events/subscribe",
        &[("cookie", &cookie), ("origin", &origin)],
    )
    .await;
    assert!(socket.is_ok(), "JupyterLab's WebSocket through the proxy");

    rig.directory.set_credential(LAB, lab, OWNER, None);
    let reply = rig
        .get("/labs/lab-1/api/status", &[("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "no token, no entry");
    child.kill().await.unwrap();
}
