//! Logging in and out, sessions that expire, CSRF, API tokens, password
//! changes and accounts an administrator disables — on every backend.

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn login_me_logout_on_every_backend() {
    for db in backends() {
        let app = spawn_on(db).await;
        let s = app.login("admin", ADMIN_PASSWORD).await;
        let me: Value = s
            .client
            .get(app.u("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (me["username"].as_str(), me["role"].as_str()),
            (Some("admin"), Some("admin")),
            "{db:?}"
        );

        // Logging out needs the CSRF token when the session cookie authenticates.
        let r = s
            .client
            .post(app.u("/api/v1/auth/logout"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{db:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf_failed");
        let r = s
            .client
            .post(app.u("/api/v1/auth/logout"))
            .header("x-csrf-token", &s.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{db:?}");
        let r = s.client.get(app.u("/api/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{db:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthenticated");
    }
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_throttled() {
    let app = spawn_app().await;
    for user in ["admin", "nobody"] {
        let r = plain()
            .post(app.u("/api/v1/auth/login"))
            .json(&json!({"username": user, "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap()["code"],
            "invalid_credentials"
        );
    }
    for _ in 0..10 {
        plain()
            .post(app.u("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "x"}))
            .send()
            .await
            .unwrap();
    }
    let r = plain()
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "even the right password waits after repeated failures"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = spawn_with(Options {
        idle_timeout: "2s",
        ..Options::default()
    })
    .await;
    let s = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        s.client
            .get(app.u("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let r = s.client.get(app.u("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401, "an idle session ends");
    // Pages send an expired session to the login page, keeping the target.
    let r = s.client.get(app.u("/volumes")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fvolumes");
}

#[tokio::test]
async fn session_cookie_is_httponly_and_samesite() {
    let app = spawn_app().await;
    let r = plain()
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("insitu_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn page_forms_need_the_csrf_field() {
    let app = spawn_app().await;
    let c = browser();
    // The login form carries its own double-submit token.
    let page = c
        .get(app.u("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = between(&page, "name=\"csrf\" value=\"", "\"");
    let r = c
        .post(app.u("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", "forged"),
            ("next", "/volumes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "a forged login form is refused"
    );
    let r = c
        .post(app.u("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &token),
            ("next", "/volumes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/volumes");

    let page = c
        .get(app.u("/volumes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"");
    let r = c
        .post(app.u("/volumes/deep-fields/add"))
        .form(&[("back", "/volumes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF field");
    let r = c
        .post(app.u("/volumes/deep-fields/add"))
        .form(&[("csrf", "nope"), ("back", "/volumes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "wrong CSRF field");
    let r = c
        .post(app.u("/volumes/deep-fields/add"))
        .form(&[("csrf", csrf.as_str()), ("back", "/volumes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = c
        .get(app.u("/volumes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"remove-deep-fields\""),
        "the volume is now mine"
    );

    // An open redirect through `next` is not followed.
    let r = browser()
        .post(app.u("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", ""),
            ("next", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert!(!r.headers()["location"].to_str().unwrap().contains("evil"));
}

pub fn between(text: &str, start: &str, end: &str) -> String {
    let i = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page"))
        + start.len();
    let j = text[i..].find(end).unwrap() + i;
    text[i..j].to_owned()
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_are_shown_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    assert!(admin.starts_with("insitu_"));
    let c = plain();
    let r = c
        .post(app.u("/api/v1/me/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["info"]["id"].as_str().unwrap().to_owned();
    assert_eq!(get_json(&c, &app.u("/api/v1/me"), &secret).await.0, 200);

    let (_, list) = get_json(&c, &app.u("/api/v1/me/tokens"), &admin).await;
    let listed = serde_json::to_string(&list).unwrap();
    assert!(!listed.contains(&secret), "listing never shows a secret");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    let r = c
        .delete(app.u(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = get_json(&c, &app.u("/api/v1/me"), &secret).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "revoked at once"
    );
    let r = c
        .delete(app.u(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        get_json(&c, &app.u("/api/v1/me"), "insitu_0000").await.0,
        401
    );
    let r = c
        .get(app.u("/api/v1/me"))
        .header("authorization", "Basic YWRtaW46eA==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn disabling_a_user_stops_sessions_and_tokens_at_once() {
    let app = spawn_app().await;
    let token = app.user_with_role("carol", "user").await;
    let session = app.login("carol", PASSWORD).await;
    let c = plain();
    assert_eq!(
        get_json(&c, &app.u("/api/v1/datalabs"), &token).await.0,
        200
    );
    assert_eq!(
        session
            .client
            .get(app.u("/api/v1/datalabs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let admin = app.admin_token().await;
    let r = c
        .patch(app.u("/api/v1/admin/users/carol"))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["disabled"], true);

    let (status, body) = get_json(&c, &app.u("/api/v1/datalabs"), &token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_disabled"))
    );
    assert_eq!(
        session
            .client
            .get(app.u("/api/v1/datalabs"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = plain()
        .post(app.u("/api/v1/auth/login"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    c.patch(app.u("/api/v1/admin/users/carol"))
        .bearer_auth(&admin)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_json(&c, &app.u("/api/v1/datalabs"), &token).await.0,
        200,
        "enabled again"
    );
}

#[tokio::test]
async fn role_changes_take_effect_on_the_next_request() {
    let app = spawn_app().await;
    let token = app.user_with_role("dave", "user").await;
    let c = plain();
    assert_eq!(
        get_json(&c, &app.u("/api/v1/admin/users"), &token).await.0,
        403
    );
    let admin = app.admin_token().await;
    c.patch(app.u("/api/v1/admin/users/dave"))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_json(&c, &app.u("/api/v1/admin/users"), &token).await.0,
        200
    );
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let c = plain();
    for change in [json!({"role": "user"}), json!({"disabled": true})] {
        let r = c
            .patch(app.u("/api/v1/admin/users/admin"))
            .bearer_auth(&admin)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "last_admin");
    }
}

#[tokio::test]
async fn password_change_ends_sessions_and_checks_policy() {
    let app = spawn_app().await;
    let token = app.user_with_role("erin", "user").await;
    let session = app.login("erin", PASSWORD).await;
    let c = plain();
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let r = c
        .post(app.u("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&change("wrong", "another-long-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(app.u("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&change(PASSWORD, "short"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "weak_password");
    let r = c
        .post(app.u("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&change(PASSWORD, "another-long-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        session
            .client
            .get(app.u("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "old sessions end"
    );
    app.login("erin", "another-long-password").await;
}

#[tokio::test]
async fn admins_create_accounts_with_valid_names_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let c = plain();
    let create = |name: &str| json!({"username": name, "password": PASSWORD});
    let r = c
        .post(app.u("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&create("../root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_username");
    let r = c
        .post(app.u("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&create("frank"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["role"], "user");
    assert!(body.get("password_hash").is_none());
    let r = c
        .post(app.u("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&create("frank"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (_, users) = get_json(&c, &app.u("/api/v1/admin/users"), &admin).await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "frank"]);
}
