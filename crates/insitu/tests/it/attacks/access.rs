//! Attacks on access requests: strangers flooding the public form or
//! filling it with oversized and hostile fields, guessing status links,
//! users and developers deciding requests, approvals past the admission
//! cap (in parallel too), and the status link's secret looked for in the
//! database.

use serde_json::{Value, json};

use crate::access::{applied, decide, request_id, status_of};
use crate::harness::*;

async fn apply_raw(app: &impl Server, body: &Value) -> (u16, Value) {
    let r = plain()
        .post(app.u("/api/v1/access/apply"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn application(username: &str, email: &str) -> Value {
    json!({
        "name": "Mallory",
        "email": email,
        "affiliation": "",
        "reason": "Let me in",
        "username": username,
    })
}

#[tokio::test]
async fn a_flood_of_applications_from_one_address_is_cut_off() {
    let app = spawn_app().await;
    // Five per address and window by default; every one counts, whatever
    // the e-mail address.
    for i in 0..5 {
        let (status, body) = apply_raw(
            &app,
            &application(&format!("flood{i}"), &format!("f{i}@example.org")),
        )
        .await;
        assert_eq!(status, 201, "{i}: {body}");
    }
    let (status, body) = apply_raw(&app, &application("flood9", "f9@example.org")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("access_rate_limited")),
        "{body}"
    );
    // Invalid applications are refused before they are counted, and still
    // refused as invalid, never stored.
    let (status, body) = apply_raw(&app, &application("Bad Name", "f9@example.org")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_application"))
    );
    let admin = app.admin_token().await;
    let (_, list) = get_json(&plain(), &app.u("/api/v1/access/requests"), &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn one_address_cannot_apply_again_and_again() {
    let app = spawn_with(Options {
        configure: |c| c.access.applications_per_address = 100,
        ..Options::default()
    })
    .await;
    let moderator = app.user_with_role("mona", "moderator").await;
    // Three per e-mail address and window: denied and reapplying counts.
    for round in 0..3 {
        let (status, body) = apply_raw(&app, &application("again", "same@example.org")).await;
        assert_eq!(status, 201, "{round}: {body}");
        let id = request_id(&app, &moderator, "again").await;
        let list: Value = get_json(
            &plain(),
            &app.u("/api/v1/access/requests?state=waiting"),
            &moderator,
        )
        .await
        .1;
        let waiting = list["items"].as_array().unwrap();
        let id = waiting
            .iter()
            .find(|r| r["username"] == "again")
            .map_or(id, |r| r["id"].as_str().unwrap().to_owned());
        let (status, _) = decide(&app, &moderator, &id, "deny", "no").await;
        assert_eq!(status, 200);
    }
    let (status, body) = apply_raw(&app, &application("again", "SAME@example.org")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("access_rate_limited"))
    );
}

#[tokio::test]
async fn oversized_and_hostile_fields_are_refused_or_shown_as_text() {
    let app = spawn_app().await;
    let base = application("hostile", "h@example.org");
    let with = |field: &str, value: Value| {
        let mut b = base.clone();
        b[field] = value;
        b
    };
    for (what, body) in [
        ("long name", with("name", json!("x".repeat(101)))),
        ("long reason", with("reason", json!("x".repeat(2001)))),
        (
            "long affiliation",
            with("affiliation", json!("x".repeat(201))),
        ),
        (
            "long e-mail",
            with("email", json!(format!("{}@example.org", "a".repeat(250)))),
        ),
        ("no e-mail", with("email", json!("not-an-address"))),
        (
            "header injection",
            with("email", json!("a@example.org\r\nBcc: all@example.org")),
        ),
        ("control characters", with("name", json!("Mal\u{0}lory"))),
        ("bidi override", with("name", json!("Mal\u{202e}yrol"))),
        ("empty reason", with("reason", json!(" \n "))),
        ("username with a path", with("username", json!("../admin"))),
        ("username in SQL", with("username", json!("x' OR '1'='1"))),
    ] {
        let (status, resp) = apply_raw(&app, &body).await;
        assert_eq!(
            (status, resp["code"].as_str()),
            (422, Some("invalid_application")),
            "{what}: {resp}"
        );
    }
    let (status, resp) = apply_raw(&app, &with("role", json!("admin"))).await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (422, Some("invalid_request")),
        "an unknown field"
    );
    let (status, resp) = apply_raw(&app, &with("reason", json!("x".repeat(300_000)))).await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Markup is kept as text and shown escaped to moderators.
    let (status, resp) = apply_raw(&app, &with("name", json!("<script>alert(1)</script>"))).await;
    assert_eq!(status, 201, "{resp}");
    app.user_with_role("mona", "moderator").await;
    let mona = app.login("mona", PASSWORD).await;
    let page = mona
        .client
        .get(app.u("/access/requests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            && !page.contains("<script>alert"),
        "{page}"
    );
}

#[tokio::test]
async fn status_links_cannot_be_guessed_and_are_stored_hashed() {
    for db in backends() {
        let app = spawn_on(db).await;
        let token = applied(&app, "ada").await;

        // Links that name no request answer as one, whatever their form,
        // and each counts against the address.
        let mut misses = 0;
        for guess in [
            "0".repeat(64),
            token[..63].to_owned(),
            format!("{token}0"),
            token
                .to_uppercase()
                .replace(|c: char| c.is_ascii_digit(), "f"),
            "%2e%2e%2fadmin".to_owned(),
            "' OR '1'='1".replace(' ', "%20"),
            "x".repeat(4000),
        ] {
            let (status, body) = status_of(&app, &guess).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (404, Some("access_request_not_found")),
                "{guess}: {body}"
            );
            misses += 1;
        }
        // The real link works (and is given back) until the address has
        // missed its fill: 20 per window by default.
        let (status, _) = status_of(&app, &token).await;
        assert_eq!(status, 200);
        for _ in misses..20 {
            let (status, _) = status_of(&app, &"1".repeat(64)).await;
            assert_eq!(status, 404);
        }
        let (status, body) = status_of(&app, &"2".repeat(64)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("access_rate_limited"))
        );
        let (status, _) = status_of(&app, &token).await;
        assert_eq!(status, 429, "a guessing address waits, whatever it sends");

        // The database holds the secret's hash only.
        let store = insitu_store::Store::connect(app.config().platform().database_url().expose())
            .await
            .unwrap();
        let hash = insitu_core::accounts::sha256_hex(&token);
        let found = store.access_request_by_token(&hash).await.unwrap();
        assert_eq!(
            found.map(|r| r.username.to_string()),
            Some("ada".to_owned())
        );
        assert!(
            store
                .access_request_by_token(&token)
                .await
                .unwrap()
                .is_none()
        );
        store.close().await;
    }
}

#[tokio::test]
async fn only_moderators_decide_and_never_past_the_cap() {
    for db in backends() {
        let app = spawn_with(Options {
            db,
            configure: |c| {
                c.access.max_accounts = Some(6);
                c.access.applications_per_address = 100;
            },
            ..Options::default()
        })
        .await;
        let moderator = app.user_with_role("mona", "moderator").await;
        let user = app.user_with_role("ulla", "user").await;
        let developer = app.user_with_role("dev", "developer").await;
        // Five accounts now: the administrator and these three, and one
        // more the cap allows.
        app.user_with_role("extra", "user").await;
        let mut tokens = Vec::new();
        for i in 0..4 {
            tokens.push(applied(&app, &format!("cap{i}")).await);
        }
        let id = request_id(&app, &moderator, "cap0").await;
        for (who, token) in [("user", &user), ("developer", &developer)] {
            for what in ["approve", "deny"] {
                let (status, body) = decide(&app, token, &id, what, "mine").await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (403, Some("forbidden")),
                    "{who} {what}"
                );
            }
        }
        // The applicant's own link is no credential for deciding.
        let (status, _) = decide(&app, &tokens[0], &id, "approve", "").await;
        assert_eq!(status, 401);
        let r = plain()
            .post(app.u(&format!("/api/v1/access/requests/{id}/approve")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (_, s) = status_of(&app, &tokens[0]).await;
        assert_eq!(s["state"], "waiting");

        // Four approvals at once, room for one: exactly one account made.
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(request_id(&app, &moderator, &format!("cap{i}")).await);
        }
        let results = futures_util::future::join_all(
            ids.iter()
                .map(|id| decide(&app, &moderator, id, "approve", "")),
        )
        .await;
        let approved = results.iter().filter(|(s, _)| *s == 200).count();
        let capped = results
            .iter()
            .filter(|(s, b)| *s == 409 && b["code"] == "admission_cap_reached")
            .count();
        assert_eq!((approved, capped), (1, 3), "{results:?}");
        let admin = app.admin_token().await;
        let (_, users) = get_json(&plain(), &app.u("/api/v1/admin/users"), &admin).await;
        assert_eq!(users["items"].as_array().unwrap().len(), 6, "{users}");
    }
}
