//! Request extractors: the bearer-token principal (with its rate limits) and JSON bodies whose
//! every error names the field (a member name repeated at any depth is refused, naming it).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use mtasts_proto::json::{self, Json, JsonError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::auth::{self, AuthError, Principal};
use crate::state::AppState;

const JSON_RULE: &str = "RFC 8259: the body is one JSON object (Content-Type: application/json)";
const UNKNOWN_FIELD_RULE: &str = "mtasts API: only the documented fields are accepted";
const REQUIRED_RULE: &str = "mtasts API: this field is required";
const DUPLICATE_RULE: &str =
    "RFC 7493 §2.3: the names within a JSON object are unique (a repeated name is ambiguous)";

/// The authenticated principal of a request (`Authorization: Bearer mtasts_…`, exactly one
/// such header: several are 400 `bad_request`).
///
/// Failed authentications count against the client address (IPv6: its /64). A valid token is
/// always let through, whatever the client's failures: clients behind one address (NAT, a
/// CI fleet) must not lose their API because one of them is misconfigured. Once the client's
/// budget is used up, anything else is answered 429: missing or malformed credentials without
/// looking at the database, a token-shaped one after the one lookup that tells whether it is
/// valid. Authenticated calls count against the token ([`crate::state::PrincipalKey`]), in
/// the budget its dashboard sessions' writes also spend.
#[derive(Clone, Copy, Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let client = state.client_key(peer, &parts.headers);
        let started = Instant::now();
        // Whether this client has used up its failures; decided before, acted on after the
        // credentials are known to be invalid.
        let exhausted = state.limiters.auth_failures.check(&client, started).err();
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (value, another) = (values.next(), values.next());
        if another.is_some() {
            // Which one counts would depend on the reader (a proxy may check the first, we
            // the last): refused, whatever they hold.
            return Err(ApiError::bad_request(
                "more than one Authorization header; send exactly one",
            ));
        }
        let token = match value {
            None => Err(AuthError::Missing),
            Some(value) => match value.to_str().map(auth::bearer_token) {
                Ok(Ok(token)) => Ok(token),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(AuthError::Invalid),
            },
        };
        let result = match token {
            Ok(token) => auth::authenticate_token(&state.db, token, state.now()).await,
            // Nothing to look up: refused at once when the budget is gone.
            Err(e) => match exhausted {
                Some(retry) => return Err(ApiError::rate_limited(retry)),
                None => Err(e),
            },
        };
        match result {
            Ok(principal) => {
                state
                    .limiters
                    .take_call(&principal, Instant::now())
                    .map_err(ApiError::rate_limited)?;
                tracing::debug!(
                    token_id = principal.token_id,
                    role = principal.role.as_str(),
                    "authenticated"
                );
                Ok(Auth(principal))
            }
            Err(AuthError::Invalid) => {
                tracing::info!(client = %client, "API authentication failed");
                match state.limiters.auth_failures.acquire(&client, started) {
                    // This failure was within the budget: an ordinary 401.
                    Ok(()) => Err(AuthError::Invalid.into()),
                    Err(retry) => Err(ApiError::rate_limited(retry)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A JSON object body, at most [`crate::state::ApiLimits::body_bytes`] long (413 beyond), read
/// field by field so that every error names its field.
pub struct JsonObject(Map<String, Value>);

impl std::fmt::Debug for JsonObject {
    /// Member names only: values may be passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.limits.body_bytes;
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Refuse a declared oversize body before reading any of it.
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::too_large(limit));
        }
        if !is_json {
            return Err(ApiError::invalid(
                "body",
                JSON_RULE,
                "send Content-Type: application/json",
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|e| {
                if is_length_limit(&e) {
                    ApiError::too_large(limit)
                } else {
                    ApiError::invalid("body", JSON_RULE, format!("cannot read the body: {e}"))
                }
            })?;
        // The body's size is bounded above; its depth by the reader's recursion limit.
        match json::parse(&bytes) {
            Ok(Json::Object(members)) => Ok(JsonObject(
                members
                    .into_iter()
                    .map(|(name, value)| (name, Value::from(value)))
                    .collect(),
            )),
            Ok(_) => Err(ApiError::invalid(
                "body",
                JSON_RULE,
                "the body is not a JSON object",
            )),
            Err(JsonError::Duplicate { path, message }) => {
                Err(ApiError::invalid(path, DUPLICATE_RULE, message))
            }
            Err(e) => Err(ApiError::invalid(
                "body",
                JSON_RULE,
                format!("the body is not valid JSON: {e}"),
            )),
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl JsonObject {
    /// Refuses any member not in `allowed` (a misspelt optional field would otherwise be
    /// silently ignored). Reports the first one in name order.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ApiError::invalid(
                unknown.clone(),
                UNKNOWN_FIELD_RULE,
                format!(
                    "unknown field {unknown:?}; expected one of: {}",
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// An optional member; `null` counts as absent. `expected` describes the type for the
    /// error (`"a string"`).
    pub fn optional<T: DeserializeOwned>(
        &mut self,
        field: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| {
                ApiError::invalid(
                    field,
                    format!("mtasts API: {field} is {expected}"),
                    format!("{field} must be {expected}: {e}"),
                )
            }),
        }
    }

    /// An optional member where `null` means something: `None` when absent, `Some(None)` for
    /// `null`, `Some(Some(value))` otherwise.
    pub fn nullable<T: DeserializeOwned>(
        &mut self,
        field: &str,
        expected: &str,
    ) -> Result<Option<Option<T>>, ApiError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => {
                self.0.remove(field);
                Ok(Some(None))
            }
            Some(_) => self.optional(field, expected).map(Some),
        }
    }

    /// A required member.
    pub fn required<T: DeserializeOwned>(
        &mut self,
        field: &str,
        expected: &str,
    ) -> Result<T, ApiError> {
        self.optional(field, expected)?
            .ok_or_else(|| ApiError::invalid(field, REQUIRED_RULE, format!("{field} is missing")))
    }
}
