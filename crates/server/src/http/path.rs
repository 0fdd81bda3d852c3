//! Path parameters, answered like every other bad input when they cannot be read: `400
//! invalid_path`, a JSON error naming the parameter, for the API and JSON callers, and the
//! not-found page for a browser (axum's own rejection is plain text).

use crate::error::Error;
use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The route's path parameters parsed into `T`.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let err = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => return Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e))
                if e.status().is_client_error() =>
            {
                let param = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                let mut err = Error::invalid(
                    "invalid_path",
                    format!("The URL's path could not be read: {}.", e.kind()),
                );
                err.param = param;
                err
            }
            // A route whose parameters do not fit `T`: the server's mistake, not the client's.
            Err(other) => {
                return Err(Error::internal(anyhow::anyhow!(other.body_text())).into_response());
            }
        };
        Err(crate::web::unreadable(
            parts.uri.path(),
            &parts.headers,
            err,
        ))
    }
}
