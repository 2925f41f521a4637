//! The alert routes of the API: the alerts a principal may see, and its tenant's alert
//! settings (webhook, e-mail, threshold). The webhook secret is never answered; one the
//! service generates is in the `PUT` answer once (`new_webhook_secret`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::{ApiResult, Auth, JsonObject};
use crate::alerts::service::{self, SettingsChange};
use crate::state::AppState;

/// `GET /api/v1/alerts?limit=`: `{"alerts": […]}`, open first, then newest first.
pub(super) async fn list_alerts(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                super::ApiError::invalid(
                    "limit",
                    "mtasts API: limit is 1 to 500",
                    "limit must be a whole number from 1 to 500",
                )
            })?,
    };
    let alerts = service::list(&state, &who, limit).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

/// `GET /api/v1/alert-settings?tenant=`: the settings (an administrator names the tenant).
pub(super) async fn get_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let settings = service::settings(&state, &who, query.get("tenant").map(String::as_str)).await?;
    Ok(Json(json!(settings)))
}

/// `PUT /api/v1/alert-settings?tenant=`: replaces the settings; a secret left out is kept.
pub(super) async fn put_settings(
    State(state): State<AppState>,
    Auth(who): Auth,
    Query(query): Query<HashMap<String, String>>,
    mut body: JsonObject,
) -> ApiResult<Json<Value>> {
    body.only(&[
        "webhook_url",
        "webhook_secret",
        "email_to",
        "failure_permille",
        "min_sessions",
    ])?;
    let change = SettingsChange {
        webhook_url: body.optional("webhook_url", "a string")?,
        webhook_secret: body.optional("webhook_secret", "a string")?,
        email_to: body
            .optional("email_to", "an array of strings")?
            .unwrap_or_default(),
        failure_permille: body.optional("failure_permille", "a whole number from 1 to 1000")?,
        min_sessions: body.optional("min_sessions", "a whole number")?,
    };
    let settings = service::put_settings(
        &state,
        &who,
        query.get("tenant").map(String::as_str),
        change,
    )
    .await?;
    Ok(Json(json!(settings)))
}

/// The OpenAPI paths and schemas of these routes, merged into the document.
pub(super) fn extend_openapi(doc: &mut Value) {
    let unix = json!({"type": "integer", "description": "Unix seconds."});
    let nullable_unix = json!({"type": ["integer", "null"], "description": "Unix seconds."});
    let tenant_query = json!({
        "name": "tenant", "in": "query", "required": false,
        "description": "Administrators: the tenant whose settings these are. Others: their own (or omitted).",
        "schema": {"type": "string"}
    });
    let errors = |success: Value| {
        json!({
            "200": success,
            "400": {"description": "Invalid input (error.field names the field)."},
            "401": {"description": "No token, or an invalid, expired or revoked one."},
            "403": {"description": "The token is read-only."},
            "404": {"description": "No such tenant, or one the caller cannot see."},
            "429": {"description": "Rate limited; see Retry-After."},
            "503": {"description": "The database is unavailable or the request timed out."}
        })
    };
    let settings_answer = json!({"description": "The settings.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertSettings"}}}});
    let paths = json!({
        "/api/v1/alerts": {
            "get": {
                "summary": "The alerts the caller may see (administrators: every tenant's), open first, then newest first.",
                "parameters": [{"name": "limit", "in": "query", "required": false,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                "responses": errors(json!({"description": "The alerts.",
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["alerts"],
                        "properties": {"alerts": {"type": "array",
                            "items": {"$ref": "#/components/schemas/Alert"}}}}}}}))
            }
        },
        "/api/v1/alert-settings": {
            "get": {
                "summary": "The tenant's alert settings (never the webhook secret).",
                "parameters": [tenant_query.clone()],
                "responses": errors(settings_answer.clone())
            },
            "put": {
                "summary": "Replace the tenant's alert settings (administrators, owners).",
                "description": "A webhook_secret left out keeps the stored one; setting a webhook_url \
                    when none is stored generates one, answered once as new_webhook_secret. Every \
                    webhook POST carries X-Mtasts-Signature: sha256=<hex HMAC-SHA256 of the body \
                    under the secret> and X-Mtasts-Timestamp.",
                "parameters": [tenant_query],
                "requestBody": {"required": true, "content": {"application/json": {"schema":
                    {"$ref": "#/components/schemas/AlertSettingsChange"}}}},
                "responses": errors(settings_answer)
            }
        }
    });
    let schemas = json!({
        "Alert": {
            "type": "object",
            "required": ["id", "tenant", "domain", "kind", "key", "state", "title", "what", "fix",
                "since", "first_seen", "last_seen", "notified_at", "resolved_at"],
            "properties": {
                "id": {"type": "integer"}, "tenant": {"type": "string"},
                "domain": {"type": "string"},
                "kind": {"type": "string", "enum": ["failure-rate", "new-failure-type",
                    "sts-policy", "uncovered-mx", "reporter-silent", "delegation-broken"]},
                "key": {"type": "string", "description": "The result type, MX host, organization or record; empty for failure-rate."},
                "state": {"type": "string", "enum": ["open", "resolved"]},
                "title": {"type": "string"}, "what": {"type": "string"}, "fix": {"type": "string"},
                "since": unix, "first_seen": unix, "last_seen": unix,
                "notified_at": nullable_unix, "resolved_at": nullable_unix
            }
        },
        "AlertSettings": {
            "type": "object",
            "required": ["tenant", "webhook_url", "webhook_secret_set", "email_to",
                "failure_permille", "min_sessions"],
            "properties": {
                "tenant": {"type": "string"},
                "webhook_url": {"type": ["string", "null"]},
                "webhook_secret_set": {"type": "boolean"},
                "email_to": {"type": "array", "items": {"type": "string"}},
                "failure_permille": {"type": "integer", "minimum": 1, "maximum": 1000},
                "min_sessions": {"type": "integer", "minimum": 0},
                "new_webhook_secret": {"type": "string", "description": "Only in the answer that generated it."}
            }
        },
        "AlertSettingsChange": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "webhook_url": {"type": ["string", "null"], "description": "https://host[:port]/path; null or empty: no webhook."},
                "webhook_secret": {"type": "string", "minLength": 16, "maxLength": 256},
                "email_to": {"type": "array", "maxItems": 10, "items": {"type": "string"}},
                "failure_permille": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                "min_sessions": {"type": "integer", "minimum": 0, "default": 20}
            }
        }
    });
    if let (Some(doc_paths), Value::Object(new)) = (doc["paths"].as_object_mut(), paths) {
        doc_paths.extend(new);
    }
    if let (Some(doc_schemas), Value::Object(new)) =
        (doc["components"]["schemas"].as_object_mut(), schemas)
    {
        doc_schemas.extend(new);
    }
}
