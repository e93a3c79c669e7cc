//! What the console API accepts before a handler runs: query parameters within their
//! documented ranges, required text parameters not empty, ids in the path without control
//! characters, and JSON numbers read by value (`5.0` is the integer 5, as JSON Schema says).
//! Out of range is a 400 with a message naming the parameter, never a panic or a 5xx. The
//! extractors here ([`ApiJson`], [`ApiQuery`], [`ApiPath`]) refuse with the same
//! `{code, message}` body as every other error.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::StatusCode;
use serde_json::Value;

use crate::ops::DeadLetterFilter;
use crate::server::ApiError;

/// `Json` whose rejection is a `{code, message}` 400, like every other error here.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<Value>::from_request(req, state).await {
            Ok(Json(mut v)) => {
                integral_numbers(&mut v);
                serde_path_to_error::deserialize(v).map(Self).map_err(|e| {
                    let at = e.path().to_string();
                    let message = if at == "." {
                        format!("the body does not fit: {}", e.inner())
                    } else {
                        format!("the body does not fit at {at}: {}", e.inner())
                    };
                    // JSON that parses but does not fit is a 422, as axum's own Json says.
                    ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", message)
                })
            }
            Err(e) => {
                // Not JSON at all: a 400; size and media type keep theirs.
                let (status, code) = match e.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => (e.status(), "payload_too_large"),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => (e.status(), "unsupported_media_type"),
                    _ => (StatusCode::BAD_REQUEST, "malformed_payload"),
                };
                Err(ApiError(status, code, e.body_text()))
            }
        }
    }
}

/// `Query` with a JSON rejection.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned + Checked,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // `limit=5.0` is the integer 5 (JSON Schema says so), whatever serde thinks.
        let query = integral_query(parts.uri.query().unwrap_or_default());
        let uri: axum::http::Uri = format!("/?{query}").parse().unwrap_or_default();
        match Query::<T>::try_from_uri(&uri) {
            Ok(Query(v)) => {
                v.check().map_err(bad_query)?;
                Ok(Self(v))
            }
            Err(e) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                e.body_text(),
            )),
        }
    }
}

/// `Path` with a JSON rejection.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        // An id in the path is never a control character (they forge log lines).
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, v)| v.chars().any(char::is_control))
        {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!("{name}: holds a control character"),
            ));
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                e.body_text(),
            )),
        }
    }
}

/// Largest page any list returns.
pub const MAX_LIMIT: i64 = 10_000;
/// Largest offset into a list.
pub const MAX_OFFSET: i64 = 1_000_000_000;
/// A century, in seconds: the furthest back an age filter reaches.
pub const MAX_AGE_SECS: i64 = 100 * 365 * 24 * 3600;

/// Query parameters that know their own bounds.
pub trait Checked {
    /// Why the parameters are out of bounds, naming the parameter.
    fn check(&self) -> Result<(), String>;
}

pub fn bad_query(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "invalid_query", message)
}

/// `value` within `min..=max`, when given.
pub fn in_range(name: &str, value: Option<i64>, min: i64, max: i64) -> Result<(), String> {
    match value {
        Some(v) if v < min || v > max => {
            Err(format!("{name}: {v} is out of range ({min} to {max})"))
        }
        _ => Ok(()),
    }
}

/// A list's `limit` and `offset`.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(), String> {
    in_range("limit", limit, 1, MAX_LIMIT)?;
    in_range("offset", offset, 0, MAX_OFFSET)
}

/// A text parameter that, when given, must say something.
pub fn not_empty(name: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some("") => Err(format!("{name}: must not be empty")),
        _ => Ok(()),
    }
}

/// An RFC 3339 time, when given.
pub fn rfc3339(name: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if crate::store::parse_ts(v).is_none() => Err(format!(
            "{name}: '{}' is not an RFC 3339 time such as 2026-01-31T09:00:00Z",
            v.escape_debug()
        )),
        _ => Ok(()),
    }
}

impl Checked for DeadLetterFilter {
    fn check(&self) -> Result<(), String> {
        page(self.limit, self.offset)
    }
}

/// Whole floats become integers, recursively: a client (or a schema-driven tool) may write
/// an integer as `8.0`, which is the same JSON Schema integer and must not be refused.
pub fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && !n.is_i64()
                && !n.is_u64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(members) => members.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// A query string with whole floats (`5.0`, `-71.00`) written as integers.
pub fn integral_query(query: &str) -> String {
    let whole = |v: &str| {
        let (int, frac) = v.split_once('.')?;
        let digits = int.strip_prefix('-').unwrap_or(int);
        (!digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.bytes().all(|b| b == b'0'))
        .then(|| int.to_owned())
    };
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = whole(&v).unwrap_or_else(|| v.into_owned());
        out.append_pair(&k, &v);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_floats_read_as_integers_and_fractions_stay() {
        let mut v = json!({ "max_attempts": 5.0, "rate": 2.5, "list": [1e3, -0.0], "big": 1e300 });
        integral_numbers(&mut v);
        assert_eq!(
            v,
            json!({ "max_attempts": 5, "rate": 2.5, "list": [1000, 0], "big": 1e300 }),
            "8.0 is the integer 8; fractions and numbers past exact integers stay floats"
        );
    }

    #[test]
    fn whole_floats_in_a_query_read_as_integers() {
        assert_eq!(
            integral_query("record_id=-71.0&limit=5&since=2026-01-01T00%3A00%3A00Z&x=1.5"),
            "record_id=-71&limit=5&since=2026-01-01T00%3A00%3A00Z&x=1.5",
            "-71.0 is the integer -71; times and fractions are left alone"
        );
    }

    #[test]
    fn out_of_range_numbers_name_the_parameter() {
        let e = in_range("older_than_secs", Some(10_000_000_000_000), 0, MAX_AGE_SECS)
            .expect_err("ten trillion seconds is out of range");
        assert!(e.starts_with("older_than_secs:"), "{e}");
        assert!(page(Some(0), None).is_err(), "a page of nothing is refused");
        assert!(
            page(Some(50), Some(-1)).is_err(),
            "a negative offset is refused"
        );
        assert!(page(None, None).is_ok());
    }
}
