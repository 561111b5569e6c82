//! Logging in with an OpenID provider: a real one (panva's `oidc-provider`,
//! run by node from `fixtures/oidc_provider.mjs`) on 127.0.0.1, driven over
//! HTTP the way a browser goes: the platform's button, the provider's login
//! form, the callback, the session. Accounts linked by subject, by verified
//! e-mail, created on first login with a role from the `groups` claim; an
//! unverified address, an unlinked identity and a disabled account refused;
//! and the whole login in Chromium through the provider's own page
//! (screenshots `oidc-*.png` under `target/screenshots/`).

use std::process::Stdio;

use insitu_web::{OidcProviderConfig, Secret};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::*;

pub const CLIENT_ID: &str = "insitu-tests";
pub const CLIENT_SECRET: &str = "insitu-tests-client-secret";

/// Where scripts/deps.sh installs the provider's node modules.
fn provider_modules() -> Option<String> {
    let dir = std::env::var("INSITU_OIDC_PROVIDER_MODULES")
        .unwrap_or_else(|_| "/opt/insitu-test/oidc-provider/node_modules".to_owned());
    std::path::Path::new(&dir)
        .join("oidc-provider")
        .exists()
        .then_some(dir)
}

/// A running OpenID provider; stopped when dropped.
pub struct Provider {
    pub issuer: String,
    child: tokio::process::Child,
}

impl Provider {
    /// The provider on a free port, knowing the redirect URIs of `apps`
    /// for each provider name given.
    pub async fn start(port: u16, redirect_uris: &[String]) -> Provider {
        let modules = provider_modules().expect(
            "oidc-provider is not installed: run scripts/deps.sh test (or set INSITU_OIDC_PROVIDER_MODULES)",
        );
        let script = repo_root().join("crates/insitu/tests/it/fixtures/oidc_provider.mjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg(port.to_string())
            .arg(CLIENT_ID)
            .arg(CLIENT_SECRET)
            .args(redirect_uris)
            .env("INSITU_OIDC_PROVIDER_MODULES", modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the OpenID provider did not start in time")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        // The provider's notices go on to stdout: keep reading them, or
        // its next write fails and it exits.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Provider {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Stops the provider (it is down from now on).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A provider's settings for the platform.
pub fn provider_config(name: &str, issuer: &str) -> OidcProviderConfig {
    OidcProviderConfig {
        name: name.to_owned(),
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Secret::new(CLIENT_SECRET),
        scopes: vec![
            "openid".into(),
            "email".into(),
            "profile".into(),
            "groups".into(),
        ],
        label: Some(format!("Log in with {name} (test)")),
        link_by_email: false,
        create_accounts: false,
        roles_claim: None,
        roles: Default::default(),
    }
}

/// The platform and the provider it trusts as `providers` (their
/// settings made by `configure` from the provider's issuer URL).
pub async fn spawn_with_provider(
    db: Db,
    configure: impl Fn(&str) -> Vec<OidcProviderConfig>,
) -> (TestApp, Provider) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let providers = configure(&issuer);
    let app = spawn_with(Options {
        db,
        oidc: providers.clone(),
        ..Options::default()
    })
    .await;
    let uris: Vec<String> = providers
        .iter()
        .map(|p| app.u(&format!("/login/oidc/{}/callback", p.name)))
        .collect();
    let provider = Provider::start(port, &uris).await;
    (app, provider)
}

/// Follows redirects by hand (so each hop is seen), returning the last
/// answer and every URL visited.
pub async fn follow(client: &reqwest::Client, url: &str) -> (reqwest::Response, Vec<String>) {
    let mut url = url.to_owned();
    let mut seen = vec![url.clone()];
    for _ in 0..12 {
        let r = client.get(&url).send().await.unwrap();
        if !r.status().is_redirection() {
            return (r, seen);
        }
        let location = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
        url = r.url().join(location).unwrap().to_string();
        seen.push(url.clone());
    }
    panic!("too many redirects: {seen:?}");
}

/// Posts the provider's login form (on `page`, the form's own page) as
/// `login`, and follows on to wherever the provider sends the browser
/// back to, stopping before the platform's callback is opened. Returns
/// the callback URL.
pub async fn provider_login(
    client: &reqwest::Client,
    page: reqwest::Response,
    login: &str,
) -> String {
    let page_url = page.url().clone();
    let html = page.text().await.unwrap();
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no login form on the provider's page: {html}"));
    let target = page_url.join(action).unwrap();
    let r = client
        .post(target)
        .form(&[
            ("prompt", "login"),
            ("login", login),
            ("password", "any password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let mut url = r
        .url()
        .join(r.headers()[reqwest::header::LOCATION].to_str().unwrap())
        .unwrap();
    // The provider resumes the authorization, then redirects to the
    // platform's callback.
    for _ in 0..6 {
        if url.path().contains("/login/oidc/") {
            return url.to_string();
        }
        let r = client.get(url.clone()).send().await.unwrap();
        assert!(r.status().is_redirection(), "{} at {url}", r.status());
        url = url
            .join(r.headers()[reqwest::header::LOCATION].to_str().unwrap())
            .unwrap();
    }
    panic!("the provider never sent the browser back: {url}");
}

/// A browser starting a login with `provider` on the platform, up to the
/// provider's login page.
pub async fn start_login(
    app: &TestApp,
    client: &reqwest::Client,
    provider: &str,
    next: &str,
) -> reqwest::Response {
    let start = app.u(&format!("/login/oidc/{provider}?next={}", urlencode(next)));
    let (page, hops) = follow(client, &start).await;
    assert_eq!(page.status(), 200, "{hops:?}");
    assert!(
        hops.iter().any(|u| u.contains("/auth?")),
        "the platform sent the browser to the provider: {hops:?}"
    );
    page
}

fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A whole login as `login` in a fresh browser: the callback's answer
/// (not followed) and the browser.
pub async fn login_through(
    app: &TestApp,
    provider: &str,
    login: &str,
    next: &str,
) -> (reqwest::Response, reqwest::Client) {
    let client = browser();
    let page = start_login(app, &client, provider, next).await;
    let callback = provider_login(&client, page, login).await;
    let r = client.get(&callback).send().await.unwrap();
    (r, client)
}

/// Who the browser is logged in as, or the status of `/api/v1/me`.
pub async fn whoami(app: &TestApp, client: &reqwest::Client) -> Result<Value, u16> {
    let r = client.get(app.u("/api/v1/me")).send().await.unwrap();
    if r.status() == 200 {
        Ok(r.json().await.unwrap())
    } else {
        Err(r.status().as_u16())
    }
}

/// The error page's code and status.
pub async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let code = body
        .split("Error code <code>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("no error code on the page: {body}"))
        .to_owned();
    (status, code)
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = plain()
        .request(method, app.u(path))
        .bearer_auth(app.admin_token().await)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn accounts_are_created_on_first_login_linked_by_subject_and_given_roles_from_a_claim() {
    for db in backends() {
        let (app, _provider) = spawn_with_provider(db, |issuer| {
            let mut p = provider_config("campus", issuer);
            p.create_accounts = true;
            p.roles_claim = Some("groups".into());
            p.roles = [(
                "insitu-moderators".to_owned(),
                insitu_domain::Role::Moderator,
            )]
            .into_iter()
            .collect();
            vec![p]
        })
        .await;
        // The login page offers the provider.
        let page = plain()
            .get(app.u("/login?next=/labs"))
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains("Log in with campus (test)"), "{html}");
        // (minijinja writes `/` in attributes as `&#x2f;`)
        assert!(
            html.contains("href=\"&#x2f;login&#x2f;oidc&#x2f;campus?next=%2Flabs\""),
            "{html}"
        );

        // Carol's first login makes her account, a moderator by her groups,
        // and lands where the login started for.
        let (r, carol) = login_through(&app, "campus", "carol", "/labs").await;
        assert_eq!(r.status(), 303, "{db:?}");
        assert_eq!(r.headers()["location"], "/labs");
        let me = whoami(&app, &carol).await.unwrap();
        assert_eq!(me["username"], "carol", "{me}");
        assert_eq!(me["role"], "moderator", "{me}");
        // Her account has no password: the password login refuses it.
        let r = plain()
            .post(app.u("/api/v1/auth/login"))
            .json(&json!({"username": "carol", "password": "!oidc"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // A second login is the same account, by the provider's subject.
        let (r, again) = login_through(&app, "campus", "carol", "/datalabs").await;
        assert_eq!(r.status(), 303);
        assert_eq!(whoami(&app, &again).await.unwrap()["username"], "carol");
        let (_, users) = admin(
            &app,
            reqwest::Method::GET,
            "/api/v1/admin/users",
            Value::Null,
        )
        .await;
        let names: Vec<&str> = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.iter().filter(|n| n.starts_with("carol")).count(),
            1,
            "{names:?}"
        );

        // Alice's groups name no role: a user.
        let (_, alice) = login_through(&app, "campus", "alice", "/datalabs").await;
        assert_eq!(whoami(&app, &alice).await.unwrap()["role"], "user");

        // An operator who makes Carol an admin by hand is overruled by
        // her groups at her next login: the provider's claim decides.
        let (status, _) = admin(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/admin/users/carol",
            json!({"role": "admin"}),
        )
        .await;
        assert_eq!(status, 200);
        let (_, carol) = login_through(&app, "campus", "carol", "/datalabs").await;
        assert_eq!(whoami(&app, &carol).await.unwrap()["role"], "moderator");

        // A disabled account cannot log in through the provider either.
        let (status, _) = admin(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/admin/users/carol",
            json!({"disabled": true}),
        )
        .await;
        assert_eq!(status, 200);
        let (r, client) = login_through(&app, "campus", "carol", "/datalabs").await;
        assert_eq!(error_code(r).await, (403, "account_disabled".to_owned()));
        assert_eq!(whoami(&app, &client).await, Err(401));
    }
}

#[tokio::test]
async fn verified_email_links_an_account_and_an_unverified_one_is_refused() {
    for db in backends() {
        let (app, _provider) = spawn_with_provider(db, |issuer| {
            let mut p = provider_config("uni", issuer);
            p.link_by_email = true;
            vec![p]
        })
        .await;
        for (name, email) in [
            ("astro-alice", "Alice@Example.org"),
            ("astro-bob", "bob@example.org"),
        ] {
            app.user_with_role(name, "user").await;
            let (status, body) = admin(
                &app,
                reqwest::Method::PATCH,
                &format!("/api/v1/admin/users/{name}"),
                json!({"email": email}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        // One address is one account's.
        let (status, body) = admin(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/admin/users/astro-bob",
            json!({"email": "alice@example.org"}),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (409, Some("email_taken")));
        let (status, body) = admin(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/admin/users/astro-bob",
            json!({"email": "not an address"}),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_email"))
        );

        // Alice's verified address links her identity to her account
        // (compared without case).
        let (r, alice) = login_through(&app, "uni", "alice", "/datalabs").await;
        assert_eq!(r.status(), 303, "{db:?}");
        assert_eq!(
            whoami(&app, &alice).await.unwrap()["username"],
            "astro-alice"
        );
        // The link is by subject from now on: her address may change.
        let (status, _) = admin(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/admin/users/astro-alice",
            json!({"email": ""}),
        )
        .await;
        assert_eq!(status, 200);
        let (_, alice) = login_through(&app, "uni", "alice", "/datalabs").await;
        assert_eq!(
            whoami(&app, &alice).await.unwrap()["username"],
            "astro-alice"
        );

        // Bob's provider has not verified his address: no link, no session.
        let (r, bob) = login_through(&app, "uni", "bob", "/datalabs").await;
        assert_eq!(
            error_code(r).await,
            (403, "oidc_email_unverified".to_owned())
        );
        assert_eq!(whoami(&app, &bob).await, Err(401));

        // Dave has no account, and this provider creates none.
        let (r, dave) = login_through(&app, "uni", "dave", "/datalabs").await;
        assert_eq!(
            error_code(r).await,
            (403, "oidc_account_not_linked".to_owned())
        );
        assert_eq!(whoami(&app, &dave).await, Err(401));
    }
}

#[tokio::test]
async fn a_provider_that_is_down_or_unknown_gets_a_clear_page() {
    let (app, mut provider) =
        spawn_with_provider(Db::Sqlite, |issuer| vec![provider_config("campus", issuer)]).await;
    let r = plain()
        .get(app.u("/login/oidc/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (404, "oidc_provider_not_found".to_owned())
    );
    provider.stop().await;
    let r = plain()
        .get(app.u("/login/oidc/campus"))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(r).await;
    assert_eq!((status, code.as_str()), (502, "oidc_provider_unavailable"));
}

#[tokio::test]
async fn a_scientist_logs_in_through_the_provider_in_chromium() {
    let Some(d) = crate::browser::Driver::start().await else {
        return;
    };
    let (app, provider) = spawn_with_provider(Db::Sqlite, |issuer| {
        let mut p = provider_config("campus", issuer);
        p.label = Some("Log in with your campus account".into());
        p.create_accounts = true;
        p.roles_claim = Some("groups".into());
        p.roles = [(
            "insitu-moderators".to_owned(),
            insitu_domain::Role::Moderator,
        )]
        .into_iter()
        .collect();
        vec![p]
    })
    .await;
    d.go(&app.u("/login?next=/volumes")).await;
    d.wait_for("document.querySelector('#login-oidc-campus')")
        .await;
    d.screenshot("oidc-login-page.png").await;
    d.click("#login-oidc-campus").await;
    // The provider's own login page, on its own origin.
    d.wait_for(&format!(
        "location.href.startsWith('{}/interaction/')",
        provider.issuer
    ))
    .await;
    d.type_into("input[name=login]", "carol").await;
    d.type_into("input[name=password]", "any password").await;
    d.screenshot("oidc-provider-login.png").await;
    d.click("button[type=submit]").await;
    // Back on the platform, logged in, where the login started for.
    d.wait_for(&format!("location.href === '{}'", app.u("/volumes")))
        .await;
    d.wait_for("document.body.innerText.includes('carol')")
        .await;
    let shot = d.screenshot("oidc-logged-in.png").await;
    assert!(shot.exists());
    let me = d
        .script("return fetch('/api/v1/me').then(r => r.json());")
        .await;
    assert_eq!(me["username"], "carol", "{me}");
    assert_eq!(me["role"], "moderator", "{me}");
}
