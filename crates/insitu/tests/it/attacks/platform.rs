//! Attacks on the platform's own listener: cut-off users keeping their
//! labs, races past limits, password guessing, slow and many connections,
//! planted cookies, framing, open redirects, cross-site requests and
//! hostile URLs.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use insitu_web::{MetricsAccess, Secret, Surface, route_table};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{LabEntry, echoes, enter_lab, is_cut, running_lab};
use crate::harness::*;
use crate::labs::sandbox_available;

fn https_platform(c: &mut insitu_web::ServerConfig) {
    c.public_url = Some("https://insitu.test".to_owned());
}

async fn lab_state(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, lab) = get_json(&plain(), &app.u(&format!("/api/v1/labs/{id}")), token).await;
    assert_eq!(status, 200, "{lab}");
    lab
}

async fn patch_user(app: &TestApp, token: &str, user: &str, change: Value) -> reqwest::Response {
    plain()
        .patch(app.u(&format!("/api/v1/admin/users/{user}")))
        .bearer_auth(token)
        .json(&change)
        .send()
        .await
        .unwrap()
}

/// Asserts that the lab entry's page and WebSocket are both refused now.
async fn assert_cut(entry: &LabEntry, ws: &mut super::WebSocket, after: &str) {
    assert_eq!(
        entry.page_status().await,
        401,
        "after {after}, the lab cookie no longer opens the lab"
    );
    assert!(
        is_cut(ws).await,
        "after {after}, the open WebSocket is closed"
    );
}

#[tokio::test]
async fn a_disabled_users_lab_cookie_and_websocket_die_and_their_labs_stop() {
    if !sandbox_available() {
        return;
    }
    let mut app = spawn_app().await;
    let mallory = app.user_with_role("mallory", "user").await;
    let id = running_lab(&app, &mallory, "testapp").await;
    let entry = enter_lab(&app, &mallory, &id).await;
    assert_eq!(entry.page_status().await, 200);
    let mut ws = entry.websocket().await;
    assert!(echoes(&mut ws, "hello").await, "the WebSocket works");

    let admin = app.admin_token().await;
    let r = patch_user(&app, &admin, "mallory", json!({"disabled": true})).await;
    assert_eq!(r.status(), 200);
    assert_cut(&entry, &mut ws, "the account was disabled").await;
    // A fresh WebSocket with the old cookie is refused too.
    let url = format!("{}echo", entry.base.replacen("http://", "ws://", 1));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut()
        .insert("cookie", entry.cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", entry.origin.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    // And for good: a restarted server, which knows sessions only from the
    // table, refuses the cookie as a session it does not have (not merely
    // as a lab that is not running).
    app.restart().await;
    assert_eq!(
        entry.page_on(&app.proxy_url).await,
        (401, "lab_auth_required".to_owned()),
        "after a restart, the disabled user's lab cookie is still refused"
    );

    // The lab itself was stopped, saying why (read once the account is
    // enabled again, since a disabled account reads nothing).
    patch_user(&app, &admin, "mallory", json!({"disabled": false})).await;
    let lab = lab_state(&app, &mallory, &id).await;
    assert_eq!(lab["state"], "stopped", "{lab}");
    assert_eq!(
        lab["reason"], "the account was disabled by an administrator",
        "{lab}"
    );
}

#[tokio::test]
async fn logging_out_or_changing_the_password_cuts_the_users_lab_sessions() {
    if !sandbox_available() {
        return;
    }
    let mut app = spawn_app().await;
    let token = app.user_with_role("lena", "user").await;
    let id = running_lab(&app, &token, "testapp").await;
    let mut cut = Vec::new();

    // Logging out of one browser.
    let entry = enter_lab(&app, &token, &id).await;
    let mut ws = entry.websocket().await;
    assert!(echoes(&mut ws, "one").await);
    let s = app.login("lena", PASSWORD).await;
    let r = s
        .client
        .post(app.u("/api/v1/auth/logout"))
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_cut(&entry, &mut ws, "logging out").await;
    cut.push(("logging out", entry));

    // "Log out everywhere", from the account page.
    let entry = enter_lab(&app, &token, &id).await;
    let mut ws = entry.websocket().await;
    assert!(echoes(&mut ws, "two").await);
    let other_browser = app.login("lena", PASSWORD).await;
    let s = app.login("lena", PASSWORD).await;
    let r = s
        .client
        .post(app.u("/account/logout-everywhere"))
        .form(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_cut(&entry, &mut ws, "logging out everywhere").await;
    cut.push(("logging out everywhere", entry));
    let r = other_browser
        .client
        .get(app.u("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the other browser is logged out too");

    // Changing the password (keeping the tokens, to go on with this one).
    let entry = enter_lab(&app, &token, &id).await;
    let mut ws = entry.websocket().await;
    assert!(echoes(&mut ws, "three").await);
    let r = plain()
        .post(app.u("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(
            &json!({"current_password": PASSWORD, "new_password": "a-new-long-password",
                      "revoke_tokens": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_cut(&entry, &mut ws, "a password change").await;
    cut.push(("a password change", entry));

    // The lab itself runs on: the user opens it again.
    assert_eq!(lab_state(&app, &token, &id).await["state"], "running");
    let entry = enter_lab(&app, &token, &id).await;
    assert_eq!(entry.page_status().await, 200);

    // A restarted server knows sessions only from the table: the cut ones
    // stay cut while the lab runs on, and the new one still opens it.
    app.restart().await;
    for (after, entry) in &cut {
        assert_eq!(
            entry.page_on(&app.proxy_url).await,
            (401, "lab_auth_required".to_owned()),
            "after {after} and a restart, the old lab cookie is still refused"
        );
    }
    assert_eq!(entry.page_on(&app.proxy_url).await.0, 200);
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn parallel_launches_never_pass_the_lab_limit() {
    if !sandbox_available() {
        return;
    }
    for db in backends() {
        let app = spawn_on(db).await;
        let token = app.user_with_role("greedy", "user").await;
        let mut launches = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (url, token) = (app.u("/api/v1/labs"), token.clone());
            launches.spawn(async move {
                let r = plain()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"datalab": "testapp"}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            });
        }
        let mut accepted = 0;
        while let Some(done) = launches.join_next().await {
            let (status, body) = done.unwrap();
            match status {
                202 => accepted += 1,
                409 => assert_eq!(body["code"], "lab_quota_exceeded", "{body}"),
                _ => panic!("{db:?}: {status} {body}"),
            }
        }
        assert_eq!(accepted, 2, "{db:?}: labs.max_per_user is 2");
        let (_, labs) = get_json(&plain(), &app.u("/api/v1/labs"), &token).await;
        let labs = labs["items"].as_array().unwrap().clone();
        assert_eq!(labs.len(), 2, "{db:?}: {labs:?}");
        for lab in labs {
            let id = lab["id"].as_str().unwrap();
            crate::labs::settle(&app, &token, id).await;
            plain()
                .post(app.u(&format!("/api/v1/labs/{id}/stop")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
        }
    }
}

/// A client whose connections come from `addr` (any of 127.0.0.0/8 is
/// this machine).
fn from_address(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn try_login(client: &reqwest::Client, app: &TestApp, user: &str, password: &str) -> u16 {
    client
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn parallel_wrong_guesses_get_no_more_checks_than_sequential_ones() {
    let app = spawn_app().await;
    let attacker = from_address("127.0.0.2");
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..40 {
        let (c, url) = (attacker.clone(), app.u("/api/v1/auth/login"));
        guesses.spawn(async move {
            let r = c
                .post(url)
                .json(&json!({"username": "admin", "password": format!("guess-{n}")}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        });
    }
    let mut checked = 0;
    while let Some(done) = guesses.join_next().await {
        let (status, body) = done.unwrap();
        match status {
            401 => checked += 1,
            429 => assert_eq!(body["code"], "rate_limited"),
            _ => panic!("{status} {body}"),
        }
    }
    assert!(
        (1..=10).contains(&checked),
        "{checked} of 40 parallel guesses had their password checked; 10 are allowed"
    );
}

#[tokio::test]
async fn an_attacker_locked_out_at_their_address_does_not_lock_the_admin_out_at_theirs() {
    let app = spawn_app().await;
    let attacker = from_address("127.0.0.2");
    for n in 0..10 {
        let status = try_login(&attacker, &app, "admin", &format!("guess-{n}")).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        try_login(&attacker, &app, "admin", ADMIN_PASSWORD).await,
        429,
        "the attacker's address waits, even with the right password"
    );
    let admin = from_address("127.0.0.3");
    assert_eq!(
        try_login(&admin, &app, "admin", ADMIN_PASSWORD).await,
        200,
        "the administrator, elsewhere, logs in"
    );
    // Nor for tokens (the CLI's login) or a password change.
    let r = admin
        .post(app.u("/api/v1/auth/token"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD, "token_name": "cli"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin
        .post(app.u("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(
            &json!({"current_password": ADMIN_PASSWORD, "new_password": "another-admin-password",
                      "revoke_tokens": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn a_forged_forwarded_for_is_ignored_and_a_trusted_proxys_is_believed() {
    // No proxy is trusted: rotating X-Forwarded-For changes nothing.
    let app = spawn_app().await;
    let attacker = from_address("127.0.0.2");
    for n in 0..10 {
        let r = attacker
            .post(app.u("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .json(&json!({"username": "admin", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = attacker
        .post(app.u("/api/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the header a client sets is not believed");

    // Behind a trusted reverse proxy, each client is counted on its own.
    let app = spawn_with(Options {
        configure: |c| c.http.trusted_proxies = vec!["127.0.0.0/8".to_owned()],
        ..Options::default()
    })
    .await;
    let via_proxy = |client: &'static str| {
        plain()
            .post(app.u("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.200, {client}"))
    };
    for _ in 0..10 {
        let r = via_proxy("203.0.113.7")
            .json(&json!({"username": "admin", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD});
    let r = via_proxy("203.0.113.7").json(&right).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let r = via_proxy("203.0.113.8").json(&right).send().await.unwrap();
    assert_eq!(r.status(), 200, "another client behind the same proxy");
}

fn address_of(app: &TestApp) -> SocketAddr {
    app.url.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection, or `within` passes.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_sent_headers_and_trickled_bodies_are_cut_off() {
    let app = spawn_with(Options {
        configure: |c| {
            c.http.header_timeout = "1s".to_owned();
            c.http.idle_timeout = "2s".to_owned();
        },
        ..Options::default()
    })
    .await;
    // Slowloris: half a header, then nothing.
    let started = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: insitu\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(6)).await,
        "half a header is cut"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A kept-alive connection left idle is closed as well.
    let mut idle = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: insitu\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(6)).await);
    // A body promised and never sent.
    let mut trickle = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    trickle
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: insitu\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    assert!(
        closed_within(&mut trickle, Duration::from_secs(8)).await,
        "a stalled body is cut"
    );
    assert_eq!(
        plain()
            .get(app.u("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Opens a connection from `from` and lets the server accept it.
async fn hold_connection(app: &TestApp, from: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(address_of(app)).await.unwrap()
}

/// A request from `from` on a connection of its own: the status and the
/// error code, if any.
async fn health_from(app: &TestApp, from: &str) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = client
        .get(app.u("/healthz"))
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn one_client_cannot_take_every_connection_and_floods_are_refused() {
    let app = spawn_with(Options {
        configure: |c| {
            c.http.max_connections = 4;
            c.http.max_connections_per_client = 2;
        },
        ..Options::default()
    })
    .await;
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    let mut flood = vec![
        hold_connection(&app, "127.0.0.2").await,
        hold_connection(&app, "127.0.0.2").await,
    ];
    settle().await;
    let refused = (503, Some("too_many_connections".to_owned()));
    assert_eq!(
        health_from(&app, "127.0.0.2").await,
        refused,
        "a third from one address"
    );
    assert_eq!(
        health_from(&app, "127.0.0.3").await.0,
        200,
        "another client is served"
    );
    settle().await;
    flood.push(hold_connection(&app, "127.0.0.3").await);
    flood.push(hold_connection(&app, "127.0.0.4").await);
    settle().await;

    assert_eq!(
        health_from(&app, "127.0.0.5").await,
        refused,
        "past the total"
    );
    flood.pop();
    settle().await;
    assert_eq!(
        health_from(&app, "127.0.0.5").await.0,
        200,
        "once one closes, the next is served"
    );
}

#[tokio::test]
async fn over_https_cookies_are_host_only_and_planted_ones_are_not_read() {
    let app = spawn_with(Options {
        configure: https_platform,
        ..Options::default()
    })
    .await;
    let r = plain()
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-insitu_session="), "{set}");
    let attributes: Vec<&str> = set.split("; ").skip(1).collect();
    assert!(
        attributes.contains(&"Secure") && attributes.contains(&"Path=/"),
        "{set}"
    );
    assert!(!set.to_lowercase().contains("domain="), "{set}");
    let secret = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let me = |cookie: String| {
        plain()
            .get(app.u("/api/v1/me"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        me(format!("__Host-insitu_session={secret}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        me(format!("insitu_session={secret}"))
            .await
            .unwrap()
            .status(),
        401,
        "a cookie without the prefix (which any sibling host can set) is not read"
    );
    let r = me(format!(
        "__Host-insitu_session={secret}; __Host-insitu_session={}",
        "0".repeat(64)
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "ambiguous_session"
    );
    let r = plain().get(app.u("/login")).send().await.unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("__Host-insitu_login_csrf=") && set.contains("; Secure"),
        "{set}"
    );
}

#[tokio::test]
async fn a_planted_second_cookie_is_refused_not_guessed_at() {
    let app = spawn_app().await;
    app.user_with_role("eve", "user").await;
    // Eve's session, planted by her lab on a sibling host with a longer
    // path, is sent first; the victim's own comes second.
    let eve_secret = session_secret(&app, "eve").await;
    let admin_secret = session_secret(&app, "admin").await;
    let both = format!("insitu_session={eve_secret}; insitu_session={admin_secret}");
    let r = plain()
        .get(app.u("/api/v1/me"))
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "ambiguous_session"
    );
    let r = plain()
        .get(app.u("/datalabs"))
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "pages refuse it too");
    assert!(r.text().await.unwrap().contains("ambiguous_session"));

    // Login CSRF: the attacker plants a login token they know beside the
    // victim's and posts their own credentials with it.
    let r = plain()
        .post(app.u("/login"))
        .header(
            "cookie",
            "insitu_login_csrf=known-to-the-attacker; insitu_login_csrf=the-victims-own",
        )
        .form(&[
            ("username", "eve"),
            ("password", PASSWORD),
            ("csrf", "known-to-the-attacker"),
            ("next", "/datalabs"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/login"), "not logged in: {location}");
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| { !c.to_str().unwrap().starts_with("insitu_session=") })
    );
}

/// A fresh session cookie's value for a user.
async fn session_secret(app: &TestApp, user: &str) -> String {
    let password = if user == "admin" {
        ADMIN_PASSWORD
    } else {
        PASSWORD
    };
    let r = plain()
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// A path of the route table with its parameters filled in.
fn concrete(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        out.push_str(value);
        rest = &rest[rest[i..].find('}').map_or(rest.len(), |j| i + j + 1)..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn no_page_can_be_framed_or_run_inline_code() {
    let app = spawn_app().await;
    let admin = app.login("admin", ADMIN_PASSWORD).await;
    let anonymous = plain();
    let mut checked = 0;
    let pages = route_table()
        .into_iter()
        .filter(|r| r.surface == Surface::Page && r.method == "GET")
        .map(|r| concrete(r.path, "deep-fields"))
        .chain(["/login".to_owned(), "/no-such-page".to_owned()]);
    for path in pages {
        let client = if path == "/login" {
            &anonymous
        } else {
            &admin.client
        };
        let r = client.get(app.u(&path)).send().await.unwrap();
        let h = r.headers().clone();
        let csp = h
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp:?}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let is_html = h
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        if is_html {
            let body = r.text().await.unwrap().to_lowercase();
            for tag in body.split("<script").skip(1) {
                let tag = tag.split('>').next().unwrap();
                assert!(tag.contains("src="), "{path}: an inline script");
            }
            for attr in [
                " onclick=",
                " onchange=",
                " onload=",
                " onsubmit=",
                " style=",
            ] {
                assert!(!body.contains(attr), "{path}: inline {attr}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} pages checked");
    let api = plain().get(app.u("/api/v1/me")).send().await.unwrap();
    assert_eq!(api.headers()["x-frame-options"], "DENY");
}

const HOSTILE_NEXT: [&str; 14] = [
    "//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    " //evil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
    "/%5C/evil.example",
    "/%252F/evil.example",
    "/\u{3000}/evil.example",
    "evil.example",
];

#[tokio::test]
async fn logins_send_the_browser_only_to_paths_on_this_origin() {
    let app = spawn_app().await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    // The classic: a tab browsers drop, sent raw in the query.
    let r = s
        .client
        .get(app.u("/login?next=/%09/evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/datalabs");
    for next in HOSTILE_NEXT {
        let url = reqwest::Url::parse_with_params(&app.u("/login"), &[("next", next)]).unwrap();
        let r = s.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/datalabs", "{next:?}");
        // And after a real login through the form.
        let c = browser();
        let page = c
            .get(app.u("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = crate::accounts::between(&page, "name=\"csrf\" value=\"", "\"");
        let r = c
            .post(app.u("/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf", csrf.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/datalabs", "{next:?}");
    }
    let r = s
        .client
        .get(app.u("/login?next=/volumes%3Fq%3Dfits"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/volumes?q=fits",
        "a real path is kept"
    );
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one() {
    for db in backends() {
        let app = spawn_on(db).await;
        let mut survivor = ("ann".to_owned(), app.user_with_role("ann", "admin").await);
        // Only Ann and her rival are active administrators in each round.
        assert_eq!(
            patch_user(&app, &survivor.1, "admin", json!({"disabled": true}))
                .await
                .status(),
            200
        );
        for round in 0..12 {
            let rival_name = format!("rival-{round}");
            let r = plain()
                .post(app.u("/api/v1/admin/users"))
                .bearer_auth(&survivor.1)
                .json(&json!({"username": rival_name, "password": PASSWORD, "role": "admin"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let rival = (rival_name.clone(), app.token(&rival_name, PASSWORD).await);
            let demote = |by: &(String, String), whom: &(String, String)| {
                plain()
                    .patch(app.u(&format!("/api/v1/admin/users/{}", whom.0)))
                    .bearer_auth(&by.1)
                    .json(&json!({"role": "user"}))
                    .send()
            };
            let (a, b) = tokio::join!(demote(&survivor, &rival), demote(&rival, &survivor));
            let (a, b) = (a.unwrap().status().as_u16(), b.unwrap().status().as_u16());
            assert!(
                [a, b].contains(&200) && !(a == 200 && b == 200),
                "{db:?} round {round}: {a} {b}"
            );
            survivor = if a == 200 { survivor } else { rival };
            let (status, users) =
                get_json(&plain(), &app.u("/api/v1/admin/users"), &survivor.1).await;
            assert_eq!(status, 200);
            let admins = users["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| u["role"] == "admin" && u["disabled"] == false)
                .count();
            assert_eq!(admins, 1, "{db:?} round {round}");
        }
    }
}

#[tokio::test]
async fn opening_a_lab_takes_a_post_with_the_csrf_token() {
    if !sandbox_available() {
        return;
    }
    let app = spawn_app().await;
    let token = app.user_with_role("nora", "user").await;
    let id = running_lab(&app, &token, "testapp").await;
    let s = app.login("nora", PASSWORD).await;
    // What a link or image on another site makes the browser do.
    let r = s
        .client
        .get(app.u(&format!("/my-labs/{id}/open")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "no ticket for a GET");
    let r = s
        .client
        .post(app.u(&format!("/my-labs/{id}/open")))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no ticket without the CSRF token");
    let r = s.open_lab(&app, &id).await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/_insitu/auth?ticket="),
        "the owner's form gets a ticket"
    );
    // The lab's page shows a form, not a link.
    let page = s
        .client
        .get(app.u(&format!("/my-labs/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!(
        "<form method=\"post\" action=\"/my-labs/{id}/open\""
    )));
    plain()
        .post(app.u(&format!("/api/v1/labs/{id}/stop")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_password_change_revokes_api_tokens_unless_told_not_to() {
    let app = spawn_app().await;
    let laptop = app.user_with_role("olga", "user").await;
    let stolen = app.token("olga", PASSWORD).await;
    let change = |token: &str, from: &str, to: &str, revoke: Option<bool>| {
        let mut body = json!({"current_password": from, "new_password": to});
        if let Some(r) = revoke {
            body["revoke_tokens"] = json!(r);
        }
        plain()
            .post(app.u("/api/v1/me/password"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = change(&laptop, PASSWORD, "second-long-password", None)
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for t in [&laptop, &stolen] {
        assert_eq!(
            get_json(&plain(), &app.u("/api/v1/me"), t).await.0,
            401,
            "tokens are revoked by default"
        );
    }
    let kept = app.token("olga", "second-long-password").await;
    let r = change(
        &kept,
        "second-long-password",
        "third-long-password",
        Some(false),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        get_json(&plain(), &app.u("/api/v1/me"), &kept).await.0,
        200,
        "kept when asked"
    );
    // The page offers the choice, ticked.
    let s = app.login("olga", "third-long-password").await;
    let page = s
        .client
        .get(app.u("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let boxed = crate::accounts::between(&page, "name=\"revoke_tokens\"", ">");
    assert!(boxed.contains("checked"), "{boxed}");
    let r = s
        .client
        .post(app.u("/account/password"))
        .form(&[
            ("csrf", s.csrf.as_str()),
            ("current_password", "third-long-password"),
            ("new_password", "fourth-long-password"),
            ("confirm", "fourth-long-password"),
            ("revoke_tokens", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get_json(&plain(), &app.u("/api/v1/me"), &kept).await.0, 401);
}

#[tokio::test]
async fn metrics_can_be_kept_to_admins_or_a_bearer_secret() {
    let app = spawn_with(Options {
        configure: |c| c.metrics.access = MetricsAccess::Admin,
        ..Options::default()
    })
    .await;
    let user = app.user_with_role("mel", "user").await;
    let admin = app.admin_token().await;
    let metrics = |token: Option<&str>| {
        let mut r = plain().get(app.u("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), 401);
    assert_eq!(metrics(Some(&user)).await.unwrap().status(), 403);
    let r = metrics(Some(&admin)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("http_requests_total"));

    let app = spawn_with(Options {
        configure: |c| {
            c.metrics.access = MetricsAccess::Token;
            c.metrics.token = Some(Secret::new("a-scraper-secret-of-some-length"));
        },
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let metrics = |token: Option<&str>| {
        let mut r = plain().get(app.u("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    for refused in [None, Some("wrong-secret"), Some(admin.as_str())] {
        let r = metrics(refused).await.unwrap();
        assert_eq!(r.status(), 401, "{refused:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthenticated");
    }
    let r = metrics(Some("a-scraper-secret-of-some-length"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Hostile values for a path parameter: bytes that are not UTF-8, encoded
/// separators and traversals, control characters and over-long names.
fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "%ff",
        "%c3",
        "%80",
        "%ff%fe%fd",
        "%00",
        "%c0%af",
        "%e2%80%ae",
        "..",
        "%2e%2e",
        "..%2f..%2fetc%2fpasswd",
        "%2f",
        "%5c",
        "%25",
        "%0d%0aX-Injected:%201",
        "%3Cscript%3E",
        "'%20OR%201=1--",
        "%20",
        "a%22b",
        "%F0%9F%92%A9",
    ]
    .map(str::to_owned)
    .to_vec();
    v.push("a".repeat(300));
    v.push("%ff".repeat(1000));
    v.push("x".repeat(6000));
    v
}

#[tokio::test]
async fn hostile_urls_get_a_coded_error_on_every_route() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let codes: Vec<&str> = insitu_api::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut calls = 0;
    for route in route_table() {
        let mut urls: Vec<String> = Vec::new();
        if route.path.contains('{') {
            urls.extend(hostile_values().iter().map(|v| concrete(route.path, v)));
        }
        urls.push(format!(
            "{}?%ff=%fe&next=%c3&q=%ff&notice=%80&kind=%00",
            concrete(route.path, "x")
        ));
        for path in urls {
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let mut req = client.request(method, app.u(&path)).bearer_auth(&token);
            if route.method != "GET" {
                req = match route.surface {
                    Surface::Api | Surface::VoTable => req.json(&json!({})),
                    Surface::Page => req.form(&[("back", "%ff")]),
                };
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let what = format!("{} {path:.120}: {status}", route.method);
            assert!(status < 500, "{what}");
            calls += 1;
            if status < 400 {
                continue;
            }
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = r.text().await.unwrap();
            match route.surface {
                Surface::Api => {
                    assert!(
                        kind.starts_with("application/json"),
                        "{what}: {kind} {body:.200}"
                    );
                    let e: Value = serde_json::from_str(&body).unwrap();
                    let code = e["code"].as_str().unwrap_or_default();
                    assert!(codes.contains(&code), "{what}: {body:.200}");
                    assert!(e["message"].is_string(), "{what}: {body:.200}");
                }
                Surface::Page => {
                    assert!(kind.starts_with("text/html"), "{what}: {kind} {body:.200}");
                    assert!(
                        codes.iter().any(|c| body.contains(c)),
                        "{what}: {body:.200}"
                    );
                }
                Surface::VoTable => {
                    assert!(
                        kind.starts_with("application/x-votable+xml"),
                        "{what}: {kind} {body:.200}"
                    );
                    assert!(
                        body.contains(r#"<INFO name="QUERY_STATUS" value="ERROR">"#),
                        "{what}: {body:.200}"
                    );
                    assert!(
                        codes.iter().any(|c| body.contains(c)),
                        "{what}: {body:.200}"
                    );
                }
            }
        }
    }
    assert!(calls > 400, "{calls} calls");
    // The four the report named, by name.
    for path in [
        "/api/v1/labs/%ff",
        "/api/v1/me/tokens/%ff",
        "/api/v1/admin/users/%c3",
        "/api/v1/me/volumes/%80",
    ] {
        let method = if path.contains("volumes") {
            "PUT"
        } else {
            "GET"
        };
        let method = if path.contains("tokens") {
            "DELETE"
        } else {
            method
        };
        let method = if path.contains("admin") {
            "PATCH"
        } else {
            method
        };
        let mut req = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.u(path),
            )
            .bearer_auth(&token);
        if method == "PATCH" {
            req = req.json(&json!({}));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["code"],
            "invalid_path",
            "{path}"
        );
    }
}

/// The platform's use over time is the operator's: every other role is
/// refused the series, with a token or a session, and the console's page
/// with its plots; without a credential it is unauthenticated.
#[tokio::test]
async fn usage_over_time_is_for_administrators_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let url = app.u("/api/v1/admin/usage?step=1h");
    let (status, _) = get_json(&plain(), &url, &admin).await;
    assert_eq!(status, 200);
    let r = plain().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for role in ["user", "developer", "moderator"] {
        let name = format!("not-admin-{role}");
        let token = app.user_with_role(&name, role).await;
        let (status, body) = get_json(&plain(), &url, &token).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{role}"
        );
        let session = app.login(&name, PASSWORD).await;
        let r = session.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 403, "{role} with a session");
        let r = session
            .client
            .get(app.u("/admin/labs?usage=30d"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{role}: the console's page");
        let page = r.text().await.unwrap();
        assert!(!page.contains("usage-labs"), "{role}: {page}");
    }
}
