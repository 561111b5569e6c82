//! Bad input gets a JSON error with a stable code, never a panic or an HTML
//! page on the API.

use serde_json::Value;

use crate::harness::*;

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_kind_of_bad_request_has_its_code() {
    let app = spawn_app().await;
    let t = app.admin_token().await;
    let c = plain();
    let post = |path: &str| c.post(app.u(path)).bearer_auth(&t);

    let r = post("/api/v1/me/tokens")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (400, "malformed_json".into()));
    let r = post("/api/v1/me/tokens")
        .json(&serde_json::json!({"name": "x", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (422, "invalid_request".into()),
        "unknown fields are refused"
    );
    let r = post("/api/v1/me/tokens")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (422, "invalid_request".into()),
        "missing fields are refused"
    );
    let r = post("/api/v1/me/tokens")
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (415, "unsupported_media_type".into()));
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = post("/api/v1/me/tokens")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (413, "payload_too_large".into()));
    let r = post("/api/v1/me/tokens")
        .json(&serde_json::json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_request".into()));
    let r = post("/api/v1/me/tokens")
        .json(&serde_json::json!({"name": "x", "expires_in_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_request".into()));

    let r = c
        .get(app.u("/api/v1/no-such-thing"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (404, "not_found".into()));
    let r = c
        .delete(app.u("/api/v1/datalabs"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (405, "method_not_allowed".into()));
    let r = c.get(app.u("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"insitu\"");
    assert_eq!(code(r).await, (401, "unauthenticated".into()));

    // The server is still well after all that.
    assert_eq!(c.get(app.u("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let c = plain();
    let h: Value = c
        .get(app.u("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["database"], "sqlite ok");
    c.get(app.u("/api/v1/datalabs")).send().await.unwrap();
    let m = c
        .get(app.u("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("http_requests_total"), "{m}");
    assert!(
        m.contains("route=\"/api/v1/datalabs\""),
        "metrics are labelled by route template"
    );
}

#[tokio::test]
async fn unknown_pages_get_an_html_404() {
    let app = spawn_app().await;
    let r = plain().get(app.u("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("not_found"));
}
