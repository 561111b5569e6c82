//! Against the OpenID login: a provider's answer replayed, another
//! browser's answer (or a code issued to another application) injected, the
//! `state` tampered with, the return target pointed at another site, and ID
//! tokens for another audience, with a wrong nonce or a broken signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::oidc::*;

async fn spawn(db: Db) -> (TestApp, Provider) {
    spawn_with_provider(db, |issuer| {
        let mut p = provider_config("campus", issuer);
        p.create_accounts = true;
        vec![p]
    })
    .await
}

/// A browser that logged in at the provider as `login`, holding the
/// callback URL the provider sent it to, not yet opened.
async fn answered(app: &TestApp, login: &str, next: &str) -> (reqwest::Client, String) {
    let client = browser();
    let page = start_login(app, &client, "campus", next).await;
    let callback = provider_login(&client, page, login).await;
    (client, callback)
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

fn param(url: &str, key: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_provider_answer_replayed_or_with_a_tampered_state_is_refused() {
    for db in backends() {
        let (app, _provider) = spawn(db).await;
        // Tampered state: refused, and the login it belonged to is spent.
        let (client, callback) = answered(&app, "alice", "/datalabs").await;
        let tampered = with_param(&callback, "state", &"0".repeat(64));
        let r = client.get(&tampered).send().await.unwrap();
        assert_eq!(
            error_code(r).await,
            (400, "oidc_state_invalid".to_owned()),
            "{db:?}"
        );
        assert_eq!(whoami(&app, &client).await, Err(401));

        // Replayed: the first answer logs in, the same answer again does not.
        let (client, callback) = answered(&app, "alice", "/datalabs").await;
        let r = client.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let fresh = browser();
        let r = fresh.get(&callback).send().await.unwrap();
        assert_eq!(error_code(r).await, (400, "oidc_state_invalid".to_owned()));
        let r = client.get(&callback).send().await.unwrap();
        assert_eq!(error_code(r).await, (400, "oidc_state_invalid".to_owned()));
        assert_eq!(whoami(&app, &fresh).await, Err(401));
    }
}

#[tokio::test]
async fn another_browsers_answer_or_another_applications_code_is_refused() {
    for db in backends() {
        let (app, provider) = spawn(db).await;
        // The attacker logs in at the provider as themself and hands the
        // answer (code and their state) to a victim, whose browser started
        // a login of its own or none: refused, and the victim is not
        // logged in as the attacker.
        let (_attacker, callback) = answered(&app, "dave", "/datalabs").await;
        let (victim, _own) = answered(&app, "alice", "/datalabs").await;
        let r = victim.get(&callback).send().await.unwrap();
        assert_eq!(
            error_code(r).await,
            (400, "oidc_state_invalid".to_owned()),
            "{db:?}"
        );
        assert_eq!(whoami(&app, &victim).await, Err(401));
        let stranger = browser();
        let r = stranger.get(&callback).send().await.unwrap();
        assert_eq!(error_code(r).await, (400, "oidc_state_invalid".to_owned()));

        // A code the provider issued to another application, put into a
        // login of the attacker's own (right state, right cookie): the
        // provider will not exchange it for this platform.
        let (foreign_code, _, _) = foreign_grant(&app, &provider, "another-app", "dave").await;
        let (attacker, callback) = answered(&app, "dave", "/datalabs").await;
        let injected = with_param(&callback, "code", &foreign_code);
        let r = attacker.get(&injected).send().await.unwrap();
        assert_eq!(error_code(r).await, (403, "oidc_login_refused".to_owned()));
        assert_eq!(whoami(&app, &attacker).await, Err(401));
    }
}

#[tokio::test]
async fn the_return_target_never_leaves_the_platform() {
    let (app, _provider) = spawn(Db::Sqlite).await;
    for hostile in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
    ] {
        let (client, callback) = answered(&app, "alice", hostile).await;
        let r = client.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "{hostile}");
        assert_eq!(r.headers()["location"], "/datalabs", "{hostile}");
    }
}

/// Plays another OAuth client of the provider: its own authorization
/// (as `login`), up to a code. Returns the code, the PKCE verifier and the
/// nonce asked for.
async fn foreign_grant(
    app: &TestApp,
    provider: &Provider,
    client_id: &str,
    login: &str,
) -> (String, String, String) {
    let verifier = "v".repeat(50);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let nonce = format!("nonce-{client_id}");
    let redirect = app.u("/login/oidc/campus/callback");
    let mut url = reqwest::Url::parse(&format!("{}/auth", provider.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "their-state")
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let client = browser();
    let (page, _) = follow(&client, url.as_str()).await;
    let callback = provider_login(&client, page, login).await;
    (param(&callback, "code"), verifier, nonce)
}

/// An ID token the provider issues to `client_id` (as `login`).
async fn id_token_for(
    app: &TestApp,
    provider: &Provider,
    client_id: &str,
    secret: &str,
    login: &str,
) -> (String, String) {
    let (code, verifier, nonce) = foreign_grant(app, provider, client_id, login).await;
    let r = plain()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            (
                "redirect_uri",
                app.u("/login/oidc/campus/callback").as_str(),
            ),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    (body["id_token"].as_str().unwrap().to_owned(), nonce)
}

#[tokio::test]
async fn id_tokens_for_another_audience_with_another_nonce_or_tampered_are_refused() {
    let (app, provider) = spawn(Db::Sqlite).await;
    let oidc = insitu_web::Oidc::new(vec![provider_config("campus", &provider.issuer)]).unwrap();
    let refused = |r: Result<insitu_web::Claims, insitu_api::ApiError>, why: &str| {
        let e = r.expect_err(why);
        assert_eq!(
            e.code,
            insitu_api::ErrorCode::OidcTokenInvalid,
            "{why}: {}",
            e.message
        );
        e.message
    };
    // The platform's own token passes: the checks below are what refuse.
    let (own, nonce) = id_token_for(&app, &provider, CLIENT_ID, CLIENT_SECRET, "alice").await;
    let claims = oidc.verify_id_token("campus", &own, &nonce).await.unwrap();
    assert_eq!(claims.sub, "alice");

    let (foreign, nonce) = id_token_for(
        &app,
        &provider,
        "another-app",
        "another-app-secret",
        "alice",
    )
    .await;
    let m = refused(
        oidc.verify_id_token("campus", &foreign, &nonce).await,
        "audience",
    );
    assert!(m.contains("audience"), "{m}");

    let m = refused(
        oidc.verify_id_token("campus", &own, "another-nonce").await,
        "nonce",
    );
    assert!(m.contains("nonce"), "{m}");

    // The payload changed (another subject), the signature kept.
    let parts: Vec<&str> = own.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "dave".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let m = refused(
        oidc.verify_id_token("campus", &forged, &nonce).await,
        "signature",
    );
    assert!(m.contains("signature"), "{m}");
    // Unsigned, with the same claims.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        parts[1]
    );
    refused(
        oidc.verify_id_token("campus", &unsigned, &nonce).await,
        "alg none",
    );
}
