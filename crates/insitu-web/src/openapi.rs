//! The OpenAPI 3.1 document, generated from the route table and the wire
//! types' JSON Schemas. Pages are left out; every API route is in.

use insitu_api::{ApiError, ErrorCode};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::access::{Access, Surface};
use crate::routes::route_table;

pub fn openapi_document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let error_schema = generator.subschema_for::<ApiError>().to_value();
    let mut paths: Map<String, Value> = Map::new();
    for route in route_table()
        .into_iter()
        .filter(|r| r.surface != Surface::Page)
    {
        let mut op = Map::new();
        op.insert("summary".into(), json!(route.summary));
        op.insert("tags".into(), json!([route.tag]));
        op.insert(
            "operationId".into(),
            json!(operation_id(route.method, route.path)),
        );
        let mut params: Vec<Value> = path_params(route.path)
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(route.query.iter().map(|q| {
            let schema = if *q == "q" {
                json!({"type": "string"})
            } else {
                json!({"type": "array", "items": {"type": "string"}})
            };
            json!({"name": q, "in": "query", "required": false, "schema": schema,
                   "style": "form", "explode": true})
        }));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(req) = route.request {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": req(&mut generator).to_value()}}}),
            );
        }
        let mut responses = Map::new();
        let (status, body) = route.response;
        let ok = match body {
            Some(schema) => json!({"description": "Success",
                "content": {"application/json": {"schema": schema(&mut generator).to_value()}}}),
            None if route.surface == Surface::VoTable => {
                json!({"description": "Success: a VOTable (errors are VOTables too, with QUERY_STATUS ERROR)",
                    "content": {"application/x-votable+xml": {"schema": {"type": "string"}}}})
            }
            None if route.path == "/metrics" => {
                json!({"description": "Success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            None if route.path.ends_with("/provenance") => {
                json!({"description": "Success", "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}})
            }
            None if route.path == "/api/openapi.json" => {
                json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}})
            }
            None => json!({"description": "Success, no body"}),
        };
        responses.insert(status.to_string(), ok);
        for code in error_codes(
            route.method,
            route.path,
            route.access,
            route.request.is_some(),
            !route.query.is_empty(),
        ) {
            let entry = responses
                .entry(code.status().to_string())
                .or_insert_with(|| json!({"description": "", "content": {"application/json": {"schema": error_schema.clone()}}}));
            if let Some(d) = entry.get_mut("description") {
                let text = d.as_str().unwrap_or_default();
                let joined = if text.is_empty() {
                    format!("`{}`", code.as_str())
                } else {
                    format!("{text}, `{}`", code.as_str())
                };
                *d = Value::String(joined);
            }
        }
        op.insert("responses".into(), Value::Object(responses));
        match route.access {
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
            Access::Role(role) => {
                op.insert("x-insitu-role".into(), json!(role.as_str()));
            }
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = item {
            m.insert(route.method.to_lowercase(), Value::Object(op));
        }
    }
    let schemas = generator.take_definitions(true);
    let error_rows: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| json!({"code": c.as_str(), "status": c.status(), "meaning": c.meaning()}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Insitu API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Science-data platform: datalab catalogue, data volumes, accounts. \
                Authenticate with `Authorization: Bearer <token>` (personal API token) or the \
                session cookie; cookie-authenticated requests that change state must send \
                `X-CSRF-Token`. Every error body is `{code, message}` with a stable `code` \
                listed in `x-error-codes`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "Personal API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "insitu_session",
                    "description": "The browser session; named `__Host-insitu_session` when the platform is served over https. A request carrying it twice is refused (`ambiguous_session`)."},
            },
        },
        "security": [{"token": []}, {"session": []}],
        "x-error-codes": error_rows,
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}')
                .replace(['.', '-'], "_")
        })
        .collect();
    format!("{}_{}", method.to_lowercase(), words.join("_"))
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Routes that check a password: their tries are throttled.
const PASSWORD_ROUTES: [&str; 3] = [
    "/api/v1/auth/login",
    "/api/v1/auth/token",
    "/api/v1/me/password",
];

/// The error codes a route can answer with, from what it is.
fn error_codes(
    method: &str,
    path: &str,
    access: Access,
    has_body: bool,
    has_query: bool,
) -> Vec<ErrorCode> {
    let mut codes = Vec::new();
    if path.contains('{') {
        codes.push(ErrorCode::InvalidPath);
    }
    if PASSWORD_ROUTES.contains(&path) {
        codes.push(ErrorCode::RateLimited);
    }
    if path == "/metrics" {
        // When `metrics.access` keeps them to administrators or a secret.
        codes.extend([ErrorCode::Unauthenticated, ErrorCode::Forbidden]);
    }
    if has_body {
        codes.extend([
            ErrorCode::MalformedJson,
            ErrorCode::InvalidRequest,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
        ]);
    }
    if has_query {
        codes.push(ErrorCode::InvalidQuery);
    }
    if let Access::Role(role) = access {
        codes.extend([
            ErrorCode::Unauthenticated,
            ErrorCode::AccountDisabled,
            ErrorCode::AmbiguousSession,
        ]);
        if role > insitu_domain::Role::User {
            codes.push(ErrorCode::Forbidden);
        }
        if method != "GET" {
            codes.push(ErrorCode::CsrfFailed);
        }
    }
    codes.push(ErrorCode::Internal);
    codes
}
