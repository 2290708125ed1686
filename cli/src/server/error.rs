//! The one place where errors become HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use feed_engine::Error;

use crate::wire::{ErrorBody, QueryLocation};

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    Engine(Error),
    /// The request body is not valid JSON (400) or has wrong fields (422); also the bare
    /// statuses of routing (404, 405), size (413) and time (408).
    Body {
        status: StatusCode,
        message: String,
        /// The body field at fault, when serde names one.
        field: Option<String>,
        hint: Option<String>,
    },
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Engine(e)
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        // The rejection knows its status: 400 not JSON, 413 too large, 415 not declared JSON,
        // 422 the wrong fields.
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::status(
                status,
                &format!(
                    "the body is larger than the limit of {} MiB ({} bytes)",
                    super::routes::BODY_LIMIT >> 20,
                    super::routes::BODY_LIMIT
                ),
            );
        }
        body_error(status, &r.body_text())
    }
}

/// The body field names of the requests, for "did you mean".
const BODY_FIELDS: &[&str] = &[
    "model",
    "query",
    "saved",
    "params",
    "limit",
    "offset",
    "page_token",
    "return_metadata",
    "explain",
    "user_id",
];

/// axum's rejection text in the API's words, with the field serde names: `limit: invalid
/// value ...` (a field's value), `unknown field `limt`` or `missing field `user_id``.
fn body_error(status: StatusCode, text: &str) -> ApiError {
    let text = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
    ]
    .iter()
    .find_map(|p| text.strip_prefix(p))
    .unwrap_or(text);
    let (path, rest) = match text.split_once(": ") {
        Some((p, r)) if !p.contains(' ') && !p.is_empty() => (Some(p.to_string()), r),
        _ => (None, text),
    };
    let ticked = rest.split('`').nth(1).map(str::to_string);
    let (field, hint) = if rest.starts_with("unknown field") {
        let word = ticked.unwrap_or_default();
        let hint = feed_engine::did_you_mean(&word, BODY_FIELDS.iter().copied())
            .map(|s| format!("did you mean `{s}`?"));
        (Some(word), hint)
    } else if rest.starts_with("missing field") {
        (ticked, None)
    } else {
        (path.clone(), None)
    };
    let message = match &path {
        Some(p) if !rest.starts_with("unknown field") && !rest.starts_with("missing field") => {
            format!("{p}: {rest}")
        }
        _ => rest.to_string(),
    };
    ApiError::Body {
        status,
        // serde's words (`expected usize`) in the API's.
        message: feed_engine::config::plain_words(&message),
        field,
        hint,
    }
}

impl ApiError {
    /// A bare status with a message, as JSON like every error.
    pub fn status(status: StatusCode, message: &str) -> Self {
        ApiError::Body {
            status,
            message: message.to_string(),
            field: None,
            hint: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut location = None;
        let (mut field, mut hint) = (None, None);
        let (status, error_type, error) = match self {
            ApiError::Body {
                status,
                message,
                field: f,
                hint: h,
            } => {
                (field, hint) = (f, h);
                let kind = match status {
                    StatusCode::BAD_REQUEST => "bad_request",
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::FORBIDDEN => "forbidden",
                    StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                    StatusCode::NOT_FOUND => "not_found",
                    StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                    StatusCode::REQUEST_TIMEOUT => "timeout",
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "invalid_body",
                };
                (status, kind, message)
            }
            ApiError::Engine(e) => {
                let (status, kind) = match &e {
                    Error::Config(_) => (StatusCode::UNPROCESSABLE_ENTITY, "config"),
                    Error::Query { .. } => (StatusCode::BAD_REQUEST, "query"),
                    Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
                    Error::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                    Error::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
                    Error::Source { .. } | Error::Storage { .. } | Error::Internal(_) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                    }
                };
                if status.is_server_error() {
                    tracing::error!("{e}");
                }
                match &e {
                    Error::Invalid { what, hint: h, .. } => {
                        field = Some(what.clone());
                        hint = h.clone();
                    }
                    Error::Config(c) => {
                        field = (!c.path.is_empty()).then(|| c.path.clone());
                        hint = c.hint.clone();
                    }
                    Error::NotFound { hint: h, .. } => hint = h.clone(),
                    _ => {}
                }
                if let Error::Query { error, text } = &e {
                    let (line, column) = error.span.line_col(text);
                    location = Some(QueryLocation {
                        line,
                        column,
                        start: error.span.start,
                        end: error.span.end,
                        hint: error.hint.clone(),
                        rendered: error.render(text),
                    });
                }
                (status, kind, e.to_string())
            }
        };
        (
            status,
            Json(ErrorBody {
                error,
                error_type: error_type.to_string(),
                field,
                hint,
                location,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: Error) -> StatusCode {
        ApiError::Engine(e).into_response().status()
    }

    #[test]
    fn errors_map_to_statuses_by_who_must_act() {
        assert_eq!(
            status(Error::Internal("a connector bug".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(Error::source("fetch.events", "gone")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(Error::invalid("$since", "must be a number")),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let query = Error::query(
            feed_engine::feed_lang::QueryError::new(
                feed_engine::feed_lang::ErrorKind::Check,
                "no column",
                feed_engine::feed_lang::Span::new(0, 1),
            ),
            "x",
        );
        assert_eq!(status(query), StatusCode::BAD_REQUEST);
    }
}
