//! The query of a paginated list: `?limit=N&cursor=C`, every error a 400 naming the parameter.
//! The rules (default and largest page, what a cursor is) are
//! [`mtasts_proto::hosted::cursor`]'s.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use mtasts_proto::hosted::cursor;

use super::error::ApiError;

const QUERY_RULE: &str = "RFC 3986 §3.4: the query is name=value pairs, percent-encoded";
const ONCE_RULE: &str = "mtasts API: each query parameter is given at most once";

/// Which page a request asks for: its size (validated) and the cursor as given (checked, length
/// first, by the operation, which knows its list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageParams {
    /// Rows per page, 1 to [`cursor::MAX_PAGE_SIZE`].
    pub limit: u32,
    /// The `next_cursor` of the page before, if any (not yet checked).
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::invalid("query", QUERY_RULE, e.body_text()))?;
        let mut limit = None;
        let mut cursor = None;
        for (name, value) in pairs {
            let (slot, field) = match name.as_str() {
                "limit" => (&mut limit, "limit"),
                "cursor" => (&mut cursor, "cursor"),
                // Other parameters mean nothing here, as for any other route.
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::invalid(field, ONCE_RULE, "given twice"));
            }
            *slot = Some(value);
        }
        let limit = cursor::page_limit(limit.as_deref())?;
        Ok(PageParams { limit, cursor })
    }
}
