//! One origin per lab: a lab is served, and its tickets redeemed, only on
//! its own host; requests and WebSocket upgrades from another origin are
//! refused, in every mode.

use std::net::SocketAddr;

use http::{Method, StatusCode};
use insitu_proxy::{LabState, ProxyConfig, PublicUrl};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{LAB, OWNER, Rig, echo, open_websocket};

/// Mallory's lab, beside alice's `lab-1`.
const MALLORY_LAB: &str = "lab-2";
const MALLORY: &str = "mallory";

fn per_lab(config: &mut ProxyConfig, addr: SocketAddr) {
    config.public_url =
        Some(PublicUrl::parse(&format!("http://{{lab}}.localhost:{}", addr.port())).unwrap());
}

async fn per_lab_rig() -> Rig {
    let rig = Rig::with(per_lab, None).await;
    rig.directory
        .set(MALLORY_LAB, rig.upstream.addr, MALLORY, LabState::Running);
    rig
}

fn host_of(rig: &Rig, lab: &str) -> String {
    format!("{lab}.localhost:{}", rig.addr.port())
}

fn origin_of(rig: &Rig, lab: &str) -> String {
    format!("http://{}", host_of(rig, lab))
}

#[tokio::test]
async fn a_ticket_is_redeemed_only_on_its_labs_host() {
    let rig = per_lab_rig().await;
    // Mallory sends alice a sign-in link for his own lab, but on alice's
    // lab's host: his page would run on her lab's origin.
    let ticket = rig.proxy.issue_ticket(MALLORY_LAB, MALLORY);
    let alices_host = host_of(&rig, LAB);
    let reply = rig
        .get(
            &format!("/labs/{MALLORY_LAB}/_insitu/auth?ticket={ticket}"),
            &[("host", &alices_host)],
        )
        .await;
    reply.assert_page(StatusCode::MISDIRECTED_REQUEST, "lab_wrong_host");
    assert!(
        reply.header("set-cookie").is_none(),
        "no cookie on her host"
    );
    assert!(reply.header("location").is_none());

    // Nor on the bare address, which is no lab's host.
    let ticket = rig.proxy.issue_ticket(MALLORY_LAB, MALLORY);
    let bare = rig.addr.to_string();
    rig.get(
        &format!("/labs/{MALLORY_LAB}/_insitu/auth?ticket={ticket}"),
        &[("host", &bare)],
    )
    .await
    .assert_page(StatusCode::MISDIRECTED_REQUEST, "lab_wrong_host");

    // On its own host it works.
    let own = host_of(&rig, MALLORY_LAB);
    rig.sign_in_at(MALLORY_LAB, MALLORY, &[("host", &own)])
        .await;
}

#[tokio::test]
async fn a_lab_is_served_only_on_its_own_host() {
    let rig = per_lab_rig().await;
    let alice = host_of(&rig, LAB);
    let mallorys = host_of(&rig, MALLORY_LAB);
    let cookie = rig.sign_in_at(LAB, OWNER, &[("host", &alice)]).await;
    let reply = rig
        .get(
            "/labs/lab-1/api/status",
            &[("host", &alice), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["headers"]["host"][0], alice.as_str());

    // The same cookie (as a page on Mallory's lab's host would send it, if
    // the browser did) gets nothing there, nor on the bare address.
    for host in [mallorys.as_str(), &rig.addr.to_string(), "lab-1.localhost"] {
        rig.get(
            "/labs/lab-1/api/status",
            &[("host", host), ("cookie", &cookie)],
        )
        .await
        .assert_page(StatusCode::MISDIRECTED_REQUEST, "lab_wrong_host");
    }
    assert_eq!(
        rig.upstream.connections(),
        1,
        "only the first reached the lab"
    );
}

#[tokio::test]
async fn websocket_upgrades_need_the_labs_own_origin() {
    let rig = per_lab_rig().await;
    let alice = host_of(&rig, LAB);
    let cookie = rig.sign_in_at(LAB, OWNER, &[("host", &alice)]).await;
    let path = "/labs/lab-1/api/kernels/k/ws";
    let own = origin_of(&rig, LAB);
    let mallorys = origin_of(&rig, MALLORY_LAB);
    for origin in [
        mallorys.as_str(),
        "null",
        "http://lab-1.localhost",
        "https://lab-1.localhost",
    ] {
        let headers = [
            ("host", alice.as_str()),
            ("cookie", cookie.as_str()),
            ("origin", origin),
        ];
        assert_eq!(
            open_websocket(&rig, path, &headers).await.err(),
            Some(StatusCode::FORBIDDEN),
            "{origin}"
        );
    }
    // No Origin at all (not a browser page) is refused too.
    assert_eq!(
        open_websocket(&rig, path, &[("host", &alice), ("cookie", &cookie)])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(rig.upstream.connections(), 0, "nothing reached the lab");

    let headers = [
        ("host", alice.as_str()),
        ("cookie", cookie.as_str()),
        ("origin", own.as_str()),
    ];
    let mut socket = open_websocket(&rig, path, &headers).await.unwrap();
    echo(&mut socket, Message::text("from my own page")).await;
}

#[tokio::test]
async fn websocket_upgrades_need_the_proxys_origin_when_labs_share_it() {
    let rig = Rig::with(
        |config, addr| {
            config.public_url =
                Some(PublicUrl::parse(&format!("http://localhost:{}", addr.port())).unwrap());
        },
        None,
    )
    .await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let path = "/labs/lab-1/ws";
    let own = format!("http://localhost:{}", rig.addr.port());
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://{}", rig.addr),
    ] {
        assert_eq!(
            open_websocket(&rig, path, &[("cookie", &cookie), ("origin", origin)])
                .await
                .err(),
            Some(StatusCode::FORBIDDEN),
            "{origin}"
        );
    }
    assert_eq!(
        open_websocket(&rig, path, &[("cookie", &cookie)])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    let mut socket = open_websocket(&rig, path, &[("cookie", &cookie), ("origin", &own)])
        .await
        .unwrap();
    echo(&mut socket, Message::text("shared origin")).await;
}

#[tokio::test]
async fn websocket_upgrades_need_the_requests_own_origin_without_a_public_url() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let path = "/labs/lab-1/ws";
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://localhost:{}", rig.addr.port()),
    ] {
        assert_eq!(
            open_websocket(&rig, path, &[("cookie", &cookie), ("origin", origin)])
                .await
                .err(),
            Some(StatusCode::FORBIDDEN),
            "{origin}"
        );
    }
    assert_eq!(
        open_websocket(&rig, path, &[("cookie", &cookie)])
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    let own = format!("http://{}", rig.addr);
    let mut socket = open_websocket(&rig, path, &[("cookie", &cookie), ("origin", &own)])
        .await
        .unwrap();
    echo(&mut socket, Message::text("same host")).await;
}

#[tokio::test]
async fn requests_from_another_labs_page_are_refused() {
    let rig = per_lab_rig().await;
    let alice = host_of(&rig, LAB);
    let cookie = rig.sign_in_at(LAB, OWNER, &[("host", &alice)]).await;
    // A form that Mallory's lab page posts to alice's lab (a sibling
    // origin of the same site, so SameSite=Lax lets the cookie go).
    let mallorys = origin_of(&rig, MALLORY_LAB);
    for origin in [mallorys.as_str(), "null"] {
        let reply = rig
            .send(
                Method::POST,
                "/labs/lab-1/api/run",
                &[("host", &alice), ("cookie", &cookie), ("origin", origin)],
                "rm -rf ~",
            )
            .await;
        reply.assert_page(StatusCode::FORBIDDEN, "lab_origin_forbidden");
    }
    assert_eq!(rig.upstream.connections(), 0, "nothing reached the lab");
    let own = origin_of(&rig, LAB);
    for origin in [Some(own.as_str()), None] {
        let mut headers = vec![("host", alice.as_str()), ("cookie", cookie.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let reply = rig
            .send(Method::POST, "/labs/lab-1/api/run", &headers, "ls")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{origin:?}: {}", reply.text());
    }
}
