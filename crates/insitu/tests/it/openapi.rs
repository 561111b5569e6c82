//! The OpenAPI document is a contract: it is snapshot-tested, and it must
//! describe every API route of the route table.

use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = spawn_app().await;
    let doc: Value = plain()
        .get(app.u("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("openapi", doc, { ".info.version" => "[version]" });
}

#[tokio::test]
async fn openapi_covers_every_api_route_and_error_code() {
    let doc = insitu_web::openapi_document();
    for route in insitu_web::route_table()
        .iter()
        .filter(|r| r.surface == insitu_web::Surface::Api)
    {
        let op = &doc["paths"][route.path][route.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from OpenAPI",
            route.method,
            route.path
        );
    }
    let codes: Vec<&str> = doc["x-error-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for c in insitu_api::ErrorCode::ALL {
        assert!(codes.contains(&c.as_str()));
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["DatalabList", "Volume", "ApiError", "TokenCreated"] {
        assert!(schemas.contains_key(name), "{name} schema");
    }
}
