//! Form bodies (`application/x-www-form-urlencoded`) posted by the pages, answered like JSON
//! bodies when they are wrong: `unsupported_media_type` (415), `body_too_large` (413),
//! `body_timeout` (408), `invalid_body` or `invalid_form` (400), each as a JSON error to a
//! caller that asks for JSON, and as the error page with that status to a browser.

use super::json::{media_type_is, unread_body};
use crate::error::{Error, Kind};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::Response;
use serde::de::DeserializeOwned;

/// A form body parsed into `T`.
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Kept for the answer when the form cannot be read (after the body is taken).
        let (path, headers) = (req.uri().path().to_owned(), req.headers().clone());
        let unreadable = |e: Error| crate::web::unreadable(&path, &headers, e);
        if !media_type_is(&req, |mime| mime == "application/x-www-form-urlencoded") {
            return Err(unreadable(Error::new(
                Kind::UnsupportedMediaType,
                "unsupported_media_type",
                "Send the form as application/x-www-form-urlencoded.",
            )));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| unreadable(unread_body(&rejection, "The form is too large.")))?;
        serde_urlencoded::from_bytes(&bytes).map(Form).map_err(|e| {
            unreadable(Error::invalid(
                "invalid_form",
                format!("The form could not be read: {e}."),
            ))
        })
    }
}
