//! Access requests as strangers and moderators use them: applying without
//! an account, the status link with the place in the waiting list, a
//! moderator's approval (the account made, its password set through the
//! link, then a login) and denial (the message shown), the admission cap,
//! and the same on the pages. On every backend.

use serde_json::{Value, json};

use crate::harness::*;

/// Applies as a stranger; the answer's body.
pub async fn apply(app: &impl Server, username: &str, email: &str) -> (u16, Value) {
    let r = plain()
        .post(app.u("/api/v1/access/apply"))
        .json(&json!({
            "name": format!("Applicant {username}"),
            "email": email,
            "affiliation": "Observatoire de Paris",
            "reason": "Variable stars in the survey volumes",
            "username": username,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// An application's status link secret, asserting it went in.
pub async fn applied(app: &impl Server, username: &str) -> String {
    let (status, body) = apply(app, username, &format!("{username}@example.org")).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

pub async fn status_of(app: &impl Server, token: &str) -> (u16, Value) {
    let r = plain()
        .get(app.u(&format!("/api/v1/access/status/{token}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The id of the request asking for `username`, as moderators see it.
pub async fn request_id(app: &impl Server, moderator: &str, username: &str) -> String {
    let (status, list) = get_json(
        &plain(),
        &app.u("/api/v1/access/requests?state=all"),
        moderator,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == username)
        .unwrap_or_else(|| panic!("no request for {username}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn decide(
    app: &impl Server,
    token: &str,
    id: &str,
    what: &str,
    message: &str,
) -> (u16, Value) {
    let r = plain()
        .post(app.u(&format!("/api/v1/access/requests/{id}/{what}")))
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn set_password(app: &impl Server, token: &str, password: &str) -> (u16, Value) {
    let r = plain()
        .post(app.u(&format!("/api/v1/access/status/{token}/password")))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn strangers_wait_in_line_and_moderators_decide() {
    for db in backends() {
        // Refused applications count against the address too.
        let app = spawn_with(Options {
            db,
            configure: |c| c.access.applications_per_address = 100,
            ..Options::default()
        })
        .await;
        let moderator = app.user_with_role("mona", "moderator").await;
        let user = app.user_with_role("ulla", "user").await;

        let first = applied(&app, "ada").await;
        let second = applied(&app, "grace").await;
        let (status, body) = apply(&app, "emmy", "EMMY@Example.org").await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"]["position"], 3, "{body}");
        assert_eq!(
            body["status_path"].as_str().unwrap(),
            format!("/access/status/{}", body["token"].as_str().unwrap())
        );
        let third = body["token"].as_str().unwrap().to_owned();
        assert_eq!(third.len(), 64);

        let (status, s) = status_of(&app, &second).await;
        assert_eq!((status, s["state"].as_str()), (200, Some("waiting")));
        assert_eq!(s["position"], 2, "{s}");

        // A second waiting application with the same address (in any
        // case), or for a username someone has or waits for, is refused.
        let (status, body) = apply(&app, "emmy2", "emmy@example.org").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("already_applied"))
        );
        for taken in ["ulla", "ada"] {
            let (status, body) = apply(&app, taken, &format!("other-{taken}@example.org")).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (409, Some("username_taken")),
                "{taken}: {body}"
            );
        }

        // Only moderators see the list.
        let (status, _) = get_json(&plain(), &app.u("/api/v1/access/requests"), &user).await;
        assert_eq!(status, 403);
        let (status, list) = get_json(
            &plain(),
            &app.u("/api/v1/access/requests?state=waiting"),
            &moderator,
        )
        .await;
        assert_eq!(status, 200);
        let names: Vec<(&str, i64)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["username"].as_str().unwrap(),
                    r["position"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [("ada", 1), ("grace", 2), ("emmy", 3)], "{list}");
        assert_eq!(list["items"][2]["email"], "emmy@example.org");
        let (status, body) = get_json(
            &plain(),
            &app.u("/api/v1/access/requests?state=pending"),
            &moderator,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_query"))
        );

        // Approving makes the account; the next in line moves up.
        let grace = request_id(&app, &moderator, "grace").await;
        let (status, r) = decide(&app, &moderator, &grace, "approve", "Welcome aboard").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            (r["state"].as_str(), r["decided_by"].as_str()),
            (Some("approved"), Some("mona"))
        );
        let (_, s) = status_of(&app, &second).await;
        assert_eq!(
            (s["state"].as_str(), s["message"].as_str(), &s["position"]),
            (Some("approved"), Some("Welcome aboard"), &Value::Null)
        );
        let (_, s) = status_of(&app, &third).await;
        assert_eq!(s["position"], 2, "{s}");
        let (status, body) = decide(&app, &moderator, &grace, "deny", "changed my mind").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("access_request_decided"))
        );

        // The account has no password anyone knows until the applicant
        // sets one through the link, once.
        let r = plain()
            .post(app.u("/api/v1/auth/login"))
            .json(&json!({"username": "grace", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (status, body) = set_password(&app, &second, "short").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("weak_password"))
        );
        let (status, body) = set_password(&app, &second, PASSWORD).await;
        assert_eq!((status, body["password_set"].as_bool()), (200, Some(true)));
        let (status, body) = set_password(&app, &second, "another-long-password").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("access_password_set"))
        );
        let grace_token = app.token("grace", PASSWORD).await;
        let (status, me) = get_json(&plain(), &app.u("/api/v1/me"), &grace_token).await;
        assert_eq!(
            (status, me["username"].as_str(), me["role"].as_str()),
            (200, Some("grace"), Some("user"))
        );

        // Denying needs a message, which the applicant reads.
        let ada = request_id(&app, &moderator, "ada").await;
        let (status, body) = decide(&app, &moderator, &ada, "deny", "  ").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_access_message"))
        );
        let (status, _) = decide(
            &app,
            &moderator,
            &ada,
            "deny",
            "Please apply with your institute's address",
        )
        .await;
        assert_eq!(status, 200);
        let (_, s) = status_of(&app, &first).await;
        assert_eq!(
            (s["state"].as_str(), s["message"].as_str()),
            (
                Some("denied"),
                Some("Please apply with your institute's address")
            )
        );
        let (status, body) = set_password(&app, &first, PASSWORD).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("access_not_approved"))
        );
        let (_, s) = status_of(&app, &third).await;
        assert_eq!(s["position"], 1, "{s}");

        // A denied applicant's username and address are free again.
        let (status, body) = apply(&app, "ada", "ada@example.org").await;
        assert_eq!(status, 201, "{body}");

        let (status, body) = decide(&app, &moderator, "no-such-request", "approve", "").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("access_request_not_found"))
        );
    }
}

#[tokio::test]
async fn approvals_stop_at_the_admission_cap_and_the_applicant_waits() {
    for db in backends() {
        let app = spawn_with(Options {
            db,
            // The administrator, the moderator and one more.
            configure: |c| c.access.max_accounts = Some(3),
            ..Options::default()
        })
        .await;
        let moderator = app.user_with_role("mona", "moderator").await;
        let first = applied(&app, "ada").await;
        let second = applied(&app, "grace").await;
        let ada = request_id(&app, &moderator, "ada").await;
        let grace = request_id(&app, &moderator, "grace").await;
        let (status, _) = decide(&app, &moderator, &ada, "approve", "").await;
        assert_eq!(status, 200);
        let (status, body) = decide(&app, &moderator, &grace, "approve", "").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("admission_cap_reached")),
            "{body}"
        );
        let (_, s) = status_of(&app, &second).await;
        assert_eq!(
            (s["state"].as_str(), s["position"].as_i64()),
            (Some("waiting"), Some(1))
        );
        let (_, s) = status_of(&app, &first).await;
        assert_eq!(s["state"], "approved");
        // Denying is no admission: it works at the cap.
        let (status, _) = decide(&app, &moderator, &grace, "deny", "We are full").await;
        assert_eq!(status, 200);
    }
}

/// Posts a public form with the double-submit token of the page that
/// holds it; the redirect's target, decoded.
async fn submit_public(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> String {
    let html = client
        .get(app.u(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    let r = client.post(app.u(action)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303, "{action}");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&format!("http://platform{location}")).unwrap();
    let query: Vec<String> = url.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}?{}", url.path(), query.join("&"))
}

#[tokio::test]
async fn the_pages_take_an_application_and_a_decision() {
    let app = spawn_app().await;
    app.user_with_role("mona", "moderator").await;
    let stranger = browser();
    let login = stranger
        .get(app.u("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("href=\"/access/apply\""), "{login}");

    let to = submit_public(
        &app,
        &stranger,
        "/access/apply",
        "/access/apply",
        &[
            ("name", "Ada <b>Lovelace</b>"),
            ("email", "ada@example.org"),
            ("affiliation", ""),
            ("reason", "Light curves"),
            ("username", "ada"),
        ],
    )
    .await;
    assert!(to.starts_with("/access/status/"), "{to}");
    let status_path = to.split('?').next().unwrap().to_owned();
    let r = stranger.get(app.u(&status_path)).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"status-position\">1<"), "{page}");

    // A form without the token of its page is refused.
    let r = browser()
        .post(app.u("/access/apply"))
        .form(&[
            ("csrf", "forged"),
            ("name", "X"),
            ("email", "x@example.org"),
            ("reason", "r"),
            ("username", "xx"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));

    let mona = app.login("mona", PASSWORD).await;
    let list = mona
        .client
        .get(app.u("/access/requests?state=waiting"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("Ada &lt;b&gt;Lovelace&lt;&#x2f;b&gt;") && list.contains("id=\"nav-access\""),
        "{list}"
    );
    let id = list
        .split("action=\"/access/requests/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let r = mona
        .client
        .post(app.u(&format!("/access/requests/{id}/approve")))
        .form(&[("csrf", mona.csrf.as_str()), ("message", "Welcome")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("notice="),
        "{:?}",
        r.headers()
    );

    let to = submit_public(
        &app,
        &stranger,
        &status_path,
        &format!("{status_path}/password"),
        &[("password", PASSWORD), ("confirm", PASSWORD)],
    )
    .await;
    assert!(to.starts_with("/login?notice=Your password is set"), "{to}");
    app.login("ada", PASSWORD).await;
    let page = stranger
        .get(app.u(&status_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"status-login\""), "{page}");
}

/// In Chromium: a stranger applies from the login page and sees their
/// place in the waiting list; a moderator approves them on the *Access
/// requests* page; the stranger sets their password through their status
/// link and logs in. Screenshots under `target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_applies_is_approved_and_logs_in_in_a_browser() {
    let Some(d) = crate::browser::Driver::start().await else {
        return;
    };
    let app = spawn_app().await;
    app.user_with_role("mona", "moderator").await;
    // Someone applied earlier: the stranger is second in line.
    applied(&app, "early").await;

    d.go(&app.u("/login")).await;
    d.click("#apply-link").await;
    d.wait_for("location.pathname === '/access/apply'").await;
    d.type_into("#apply-name", "Ada Lovelace").await;
    d.type_into("#apply-email", "ada@example.org").await;
    d.type_into("#apply-affiliation", "Analytical Engines Ltd")
        .await;
    d.type_into("#apply-username", "ada").await;
    d.type_into(
        "#apply-reason",
        "Light curves of variable stars in the survey volumes.",
    )
    .await;
    d.screenshot("access-apply.png").await;
    d.click("#apply-submit").await;
    d.wait_for("location.pathname.startsWith('/access/status/')")
        .await;
    let place = d
        .script("return document.querySelector('#status-position').innerText;")
        .await;
    assert_eq!(place, "2");
    let state = d
        .script("return document.querySelector('#status-state').innerText;")
        .await;
    assert_eq!(state, "waiting");
    d.screenshot("access-waiting.png").await;
    let status_url = d
        .script("return location.origin + location.pathname;")
        .await;
    let status_url = status_url.as_str().unwrap().to_owned();

    // The moderator, in the same browser.
    d.go(&app.u("/login")).await;
    d.type_into("#username", "mona").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/datalabs'").await;
    d.click("#nav-access").await;
    d.wait_for("location.pathname === '/access/requests'").await;
    d.type_into(
        ".access-request[data-username=ada] input[name=message]",
        "Welcome to the beta, Ada",
    )
    .await;
    d.screenshot("access-requests.png").await;
    d.click(".access-request[data-username=ada] button.approve")
        .await;
    d.wait_for("document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('ada approved')")
        .await;
    d.click("#logout").await;
    d.wait_for("location.pathname === '/login'").await;

    // The stranger comes back to their link and sets a password.
    d.go(&status_url).await;
    d.wait_for("document.querySelector('#status-state').innerText === 'approved'")
        .await;
    let message = d
        .script("return document.querySelector('#status-message').innerText;")
        .await;
    assert_eq!(message, "Welcome to the beta, Ada");
    d.type_into("#new-password", "analytical-engine-42").await;
    d.type_into("#confirm-password", "analytical-engine-42")
        .await;
    d.screenshot("access-approved.png").await;
    d.click("#password-submit").await;
    d.wait_for("location.pathname === '/login'").await;
    d.type_into("#username", "ada").await;
    d.type_into("#password", "analytical-engine-42").await;
    d.click("#login-submit").await;
    d.wait_for("location.pathname === '/datalabs'").await;
    let who = d
        .script("return document.querySelector('#account-link').innerText;")
        .await;
    assert!(who.as_str().unwrap().starts_with("ada"), "{who}");
    let shot = d.screenshot("access-logged-in.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
}
