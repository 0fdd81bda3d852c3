//! Maps the services' [`Error`] to HTTP, in one place: the status, the API's error `type`, and the
//! body `{"error": {"type", "code", "message", "param"}}`. A 5xx logs the whole cause chain and
//! tells the client nothing internal.

use crate::error::{Error, Kind};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: `type` is the family, `code` the specific reason clients switch on.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of `invalid_request`, `authentication`, `permission`, `not_found`, `conflict`,
    /// `rate_limited`, `payment`, `unavailable`, `internal`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

/// The HTTP status and API `type` of an error kind.
pub fn status_of(kind: Kind) -> (StatusCode, &'static str) {
    match kind {
        Kind::Invalid => (StatusCode::BAD_REQUEST, "invalid_request"),
        Kind::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        Kind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        Kind::TimedOut => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
        Kind::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request"),
        Kind::Unauthenticated => (StatusCode::UNAUTHORIZED, "authentication"),
        Kind::Forbidden => (StatusCode::FORBIDDEN, "permission"),
        Kind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Kind::Conflict => (StatusCode::CONFLICT, "conflict"),
        Kind::Payment => (StatusCode::PAYMENT_REQUIRED, "payment"),
        Kind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Kind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Kind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl Error {
    /// The JSON body this error answers with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: status_of(self.kind).1,
                code: self.code.to_string(),
                message: self.message.clone(),
                param: self.param.clone(),
            },
        }
    }

    /// Logs the cause of a server-side failure; client errors are not worth a log line each.
    pub fn log(&self) {
        if self.kind == Kind::Internal || self.kind == Kind::Unavailable {
            match &self.source {
                Some(source) => {
                    tracing::error!(code = %self.code, error = ?source, "request failed")
                }
                None => tracing::error!(code = %self.code, "request failed: {}", self.message),
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let (status, _) = status_of(self.kind);
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after_s
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
