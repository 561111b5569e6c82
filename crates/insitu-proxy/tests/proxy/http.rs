//! Tickets, sessions, authorisation and forwarding of plain HTTP requests.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use insitu_proxy::{LabState, ProxyConfig};

use crate::support::{LAB, OWNER, PLATFORM_URL, Rig, closed_port};

fn cookie_header(cookie: &str) -> [(&'static str, &str); 1] {
    [("cookie", cookie)]
}

#[tokio::test]
async fn a_ticket_opens_a_session_cookie_scoped_to_the_lab() {
    let rig = Rig::start().await;
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    let reply = rig
        .get(
            &format!(
                "/labs/{LAB}/_insitu/auth?ticket={ticket}&next=%2Flabs%2Flab-1%2Flab%2Ftree%3Fx%3D1"
            ),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/labs/lab-1/lab/tree?x=1"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let set_cookie = reply.header("set-cookie").unwrap();
    let (pair, attributes) = set_cookie.split_once("; ").unwrap();
    let (name, secret) = pair.split_once('=').unwrap();
    assert_eq!(name, "insitu_lab_lab_1");
    assert_eq!(secret.len(), 64, "256-bit secret in hex");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        attributes,
        "Path=/labs/lab-1/; HttpOnly; SameSite=Lax; Secure"
    );

    let reply = rig.get("/labs/lab-1/lab/tree", &cookie_header(pair)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["uri"], "/labs/lab-1/lab/tree");
}

#[tokio::test]
async fn the_cookie_is_not_secure_when_configured_so() {
    let mut config = ProxyConfig::new(PLATFORM_URL);
    config.cookie_secure = false;
    let rig = Rig::with_config(config).await;
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    let reply = rig
        .get(&format!("/labs/{LAB}/_insitu/auth?ticket={ticket}"), &[])
        .await;
    assert_eq!(reply.header("location"), Some("/labs/lab-1/"));
    let set_cookie = reply.header("set-cookie").unwrap();
    assert!(set_cookie.ends_with("; Path=/labs/lab-1/; HttpOnly; SameSite=Lax"));
    let cookie = set_cookie.split(';').next().unwrap();
    let echoed = rig.get("/labs/lab-1/", &cookie_header(cookie)).await.json();
    assert_eq!(echoed["headers"]["x-forwarded-proto"][0], "http");
}

#[tokio::test]
async fn tickets_are_single_use() {
    let rig = Rig::start().await;
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    let path = format!("/labs/{LAB}/_insitu/auth?ticket={ticket}");
    assert_eq!(rig.get(&path, &[]).await.status, StatusCode::SEE_OTHER);
    let again = rig.get(&path, &[]).await;
    again.assert_page(StatusCode::UNAUTHORIZED, "lab_ticket_invalid");
    assert!(again.header("set-cookie").is_none());
    assert!(again.text().contains(PLATFORM_URL));
}

#[tokio::test]
async fn a_reused_sign_in_link_with_a_live_session_just_goes_on() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let reply = rig
        .get(
            &format!("/labs/{LAB}/_insitu/auth?ticket=used&next=/labs/lab-1/x"),
            &cookie_header(&cookie),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/labs/lab-1/x"));
    assert!(reply.header("set-cookie").is_none());
}

#[tokio::test]
async fn tickets_expire() {
    let mut config = ProxyConfig::new(PLATFORM_URL);
    config.ticket_ttl = Duration::from_millis(100);
    let rig = Rig::with_config(config).await;
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    tokio::time::sleep(Duration::from_millis(200)).await;
    rig.get(&format!("/labs/{LAB}/_insitu/auth?ticket={ticket}"), &[])
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_ticket_invalid");
}

#[tokio::test]
async fn sessions_expire() {
    let mut config = ProxyConfig::new(PLATFORM_URL);
    config.session_ttl = Duration::from_secs(1);
    let rig = Rig::with_config(config).await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    rig.get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
}

#[tokio::test]
async fn a_ticket_only_opens_its_own_lab() {
    let rig = Rig::start().await;
    rig.directory
        .set("lab-2", rig.upstream.addr, OWNER, LabState::Running);
    let ticket = rig.proxy.issue_ticket(LAB, OWNER);
    rig.get(&format!("/labs/lab-2/_insitu/auth?ticket={ticket}"), &[])
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_ticket_invalid");
    // The attempt consumed it.
    rig.get(&format!("/labs/{LAB}/_insitu/auth?ticket={ticket}"), &[])
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_ticket_invalid");

    // A session of lab-1 presented under lab-2's cookie name is refused.
    let cookie = rig.sign_in(LAB, OWNER).await;
    let secret = cookie.split_once('=').unwrap().1;
    rig.get(
        "/labs/lab-2/",
        &cookie_header(&format!("insitu_lab_lab_2={secret}")),
    )
    .await
    .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
}

#[tokio::test]
async fn next_cannot_redirect_outside_the_lab() {
    let rig = Rig::start().await;
    for next in [
        "https%3A%2F%2Fevil.example%2F",
        "%2F%2Fevil.example%2Flabs%2Flab-1%2F",
        "/labs/lab-2/",
        "/labs/lab-1/../lab-2/",
        "/labs/lab-1/%252e%252e/lab-2/",
        "/labs/lab-1//evil.example/",
        "/labs/lab-1/%0d%0aSet-Cookie:%20x=y",
        "/labs/lab-1\\evil",
        "javascript:alert(1)",
    ] {
        let ticket = rig.proxy.issue_ticket(LAB, OWNER);
        let reply = rig
            .get(
                &format!("/labs/{LAB}/_insitu/auth?ticket={ticket}&next={next}"),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(reply.header("location"), Some("/labs/lab-1/"), "{next}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_cookie_are_sent_to_the_platform() {
    let rig = Rig::start().await;
    for headers in [
        &[][..],
        &[("cookie", "insitu_lab_lab_1=nothex")][..],
        &[(
            "cookie",
            "insitu_lab_lab_1=00000000000000000000000000000000000000000000000000000000000000aa",
        )][..],
        &[("cookie", "insitu_session=platform-session")][..],
    ] {
        let reply = rig.get("/labs/lab-1/lab", headers).await;
        reply.assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
        assert!(reply.header("location").is_none(), "no redirect loops");
        assert!(reply.text().contains(&format!("href=\"{PLATFORM_URL}\"")));
    }
    assert_eq!(rig.upstream.connections(), 0, "nothing reached the lab");
}

#[tokio::test]
async fn path_query_body_and_headers_are_forwarded() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let cookies = format!("insitu_session=platform; theme=dark; {cookie}; _xsrf=tok");
    let reply = rig
        .send(
            Method::POST,
            "/labs/lab-1/api/contents/a%20b.ipynb?type=notebook&x=%2F",
            &[
                ("cookie", &cookies),
                ("authorization", "Bearer insitu_pat_secret"),
                ("x-custom", "kept"),
                ("x-forwarded-for", "203.0.113.9"),
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "dropped"),
                ("content-type", "text/plain"),
            ],
            "hello lab",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-upstream"), Some("echo"));
    let set_cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().collect();
    assert_eq!(
        set_cookies,
        ["_xsrf=lab; Path=/labs/lab-1/"],
        "labs cannot set insitu_ cookies"
    );
    let echo = reply.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["uri"],
        "/labs/lab-1/api/contents/a%20b.ipynb?type=notebook&x=%2F"
    );
    assert_eq!(echo["body"], "hello lab");
    let headers = &echo["headers"];
    assert_eq!(
        headers["cookie"],
        serde_json::json!(["theme=dark; _xsrf=tok"])
    );
    assert!(headers.get("authorization").is_none());
    assert!(headers.get("x-hop").is_none());
    assert_eq!(headers["x-custom"][0], "kept");
    assert_eq!(headers["content-type"][0], "text/plain");
    assert_eq!(headers["x-forwarded-for"][0], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"][0], "https");
    let host = rig.addr.to_string();
    assert_eq!(
        headers["host"][0], host,
        "the browser's Host reaches the lab"
    );
    assert_eq!(headers["x-forwarded-host"][0], host);

    // Other credentials are the lab's business.
    let echo = rig
        .get(
            "/labs/lab-1/api",
            &[
                ("cookie", &cookie),
                ("authorization", "Bearer jupyter-token"),
            ],
        )
        .await
        .json();
    assert_eq!(echo["headers"]["authorization"][0], "Bearer jupyter-token");
    assert!(
        echo["headers"].get("cookie").is_none(),
        "only insitu cookies: header dropped"
    );
}

#[tokio::test]
async fn connections_are_kept_alive_to_the_lab() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    for _ in 0..20 {
        let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(rig.upstream.connections(), 1);
}

#[tokio::test]
async fn only_the_owner_may_use_a_lab() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, "mallory").await;
    rig.get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::FORBIDDEN, "lab_forbidden");
    // Ownership is re-checked on every request.
    let cookie = rig.sign_in(LAB, OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    rig.directory
        .set(LAB, rig.upstream.addr, "bob", LabState::Running);
    rig.get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::FORBIDDEN, "lab_forbidden");
}

#[tokio::test]
async fn starting_stopped_and_unknown_labs_get_pages() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    rig.directory
        .set(LAB, rig.upstream.addr, OWNER, LabState::Starting);
    let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
    reply.assert_page(StatusCode::SERVICE_UNAVAILABLE, "lab_starting");
    assert!(reply.header("retry-after").is_some());

    rig.directory
        .set(LAB, rig.upstream.addr, OWNER, LabState::Stopped);
    let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
    reply.assert_page(StatusCode::NOT_FOUND, "lab_not_running");
    assert!(reply.text().contains("stopped or does not exist"));

    let ghost = rig.sign_in("ghost", OWNER).await;
    rig.get("/labs/ghost/", &cookie_header(&ghost))
        .await
        .assert_page(StatusCode::NOT_FOUND, "lab_not_running");
    assert_eq!(rig.upstream.connections(), 0);
}

#[tokio::test]
async fn only_lab_paths_are_served() {
    let rig = Rig::start().await;
    for path in [
        "/",
        "/favicon.ico",
        "/labs/",
        "/labs/Lab-1/",
        "/labs/lab_1/",
        "/labs/lab-1/_insitu/other",
        &format!("/labs/{}/", "a".repeat(65)),
    ] {
        rig.get(path, &[])
            .await
            .assert_page(StatusCode::NOT_FOUND, "not_found");
    }
    let reply = rig.get("/labs/lab-1?a=1", &[]).await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(reply.header("location"), Some("/labs/lab-1/?a=1"));
}

#[tokio::test]
async fn an_unreachable_lab_gets_a_502_page() {
    let rig = Rig::start().await;
    rig.directory
        .set(LAB, closed_port().await, OWNER, LabState::Running);
    let cookie = rig.sign_in(LAB, OWNER).await;
    rig.get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::BAD_GATEWAY, "lab_upstream_unreachable");
}

#[tokio::test]
async fn revocation_is_immediate() {
    let rig = Rig::start().await;
    rig.directory
        .set("lab-2", rig.upstream.addr, OWNER, LabState::Running);
    let first = rig.sign_in(LAB, OWNER).await;
    let second = rig.sign_in("lab-2", OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&first)).await.status,
        StatusCode::OK
    );
    rig.proxy.revoke_lab(LAB);
    rig.get("/labs/lab-1/", &cookie_header(&first))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    assert_eq!(
        rig.get("/labs/lab-2/", &cookie_header(&second))
            .await
            .status,
        StatusCode::OK
    );
    rig.proxy.revoke_user(OWNER);
    rig.get("/labs/lab-2/", &cookie_header(&second))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    // A new ticket opens a new session.
    let third = rig.sign_in(LAB, OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&third)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn proxied_requests_record_activity_at_most_once_a_second() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    assert_eq!(rig.directory.activity(LAB), 0, "signing in is not activity");
    let started = Instant::now();
    for _ in 0..10 {
        rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
    }
    let reported = rig.directory.activity(LAB);
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(reported, 1);
    } else {
        // A slow machine: still at most one report per started second.
        let seconds = usize::try_from(started.elapsed().as_secs()).unwrap();
        assert!((1..=1 + seconds).contains(&reported), "{reported}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
    assert_eq!(rig.directory.activity(LAB), reported + 1);
}

/// A stand-in for a network namespace: the lab's address means nothing on
/// the proxy's own network, and the network maps it to where the lab is.
#[derive(Debug)]
struct Elsewhere {
    real: std::net::SocketAddr,
    connects: std::sync::atomic::AtomicUsize,
}

impl insitu_proxy::LabNetwork for Elsewhere {
    fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<tokio::net::TcpStream>> + Send>,
    > {
        assert_eq!(addr.port(), 1, "the lab's own address is asked for");
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let real = self.real;
        Box::pin(async move { tokio::net::TcpStream::connect(real).await })
    }
}

#[tokio::test]
async fn labs_in_a_network_of_their_own_are_reached_through_it() {
    let rig = Rig::start().await;
    let network = std::sync::Arc::new(Elsewhere {
        real: rig.upstream.addr,
        connects: Default::default(),
    });
    let inside: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    rig.directory.set_network(LAB, inside, network.clone());
    let cookie = rig.sign_in(LAB, OWNER).await;
    for _ in 0..5 {
        let reply = rig
            .get("/labs/lab-1/echo?x=1", &cookie_header(&cookie))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(
        network.connects.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one pooled connection, opened through the lab's network"
    );
    // Another lab with the same address on the proxy's own network is not
    // confused with it: it is unreachable there.
    rig.directory.set("lab-2", inside, OWNER, LabState::Running);
    let cookie2 = rig.sign_in("lab-2", OWNER).await;
    rig.get("/labs/lab-2/", &cookie_header(&cookie2))
        .await
        .assert_page(StatusCode::BAD_GATEWAY, "lab_upstream_unreachable");
}
