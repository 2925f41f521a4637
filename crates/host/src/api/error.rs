//! Every API error is `{"error": {"code", "message", "field"?, "rule"?}}` with a fitting status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mtasts_proto::hosted::policy_input::FieldError;
use serde_json::json;

use crate::auth::AuthError;
use crate::ratelimit::RetryAfter;
use crate::service::ServiceError;

/// A field and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRule {
    /// The request field (or `body`).
    pub field: String,
    /// The rule, with its source.
    pub rule: String,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`invalid`, `not_found`, …).
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The request field at fault and the rule it breaks (400).
    pub field: Option<Box<FieldRule>>,
    /// Seconds for `Retry-After` (429, and 409 `busy`).
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge (401).
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// An error without field, rule or headers.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// 400 naming the field and the rule.
    pub fn invalid(
        field: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            field: Some(Box::new(FieldRule {
                field: field.into(),
                rule: rule.into(),
            })),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    /// 404, the same for "does not exist" and "not yours".
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// 400 for a request that is malformed as a whole (code `bad_request`), not in a field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry: RetryAfter) -> Self {
        ApiError {
            retry_after: Some(retry.seconds()),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {} s", retry.seconds()),
            )
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.rule, e.message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token is read-only",
            ),
            ServiceError::Invalid(field) => field.into(),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::Busy {
                message,
                retry_after,
            } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::CONFLICT, "busy", message)
            },
            ServiceError::Overloaded {
                message,
                retry_after,
            } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            },
            ServiceError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            ServiceError::Internal(m) => {
                // The detail may name tables or rows: log it, tell the client less.
                tracing::error!(error = %m, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the detail",
                )
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError {
                challenge: Some("Bearer realm=\"mtasts\""),
                ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            },
            AuthError::Invalid => ApiError {
                challenge: Some("Bearer realm=\"mtasts\", error=\"invalid_token\""),
                ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "invalid token")
            },
            AuthError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            AuthError::RateLimited(retry) => ApiError::rate_limited(retry),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = field.field.into();
            error["rule"] = field.rule.into();
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
