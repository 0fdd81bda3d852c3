//! The one error type of the platform's services.
//!
//! Services return [`Error`] with a [`Kind`] (what went wrong, in domain terms), a stable `code`
//! that clients can switch on, a human sentence, and the offending parameter when there is one.
//! It knows nothing of HTTP: `http::error` maps each kind to a status exactly once. An
//! [`Kind::Internal`] error keeps its cause for the logs and tells the client nothing.

use crate::db::DbError;
use std::borrow::Cow;

/// What kind of failure: each maps to one HTTP status and one API error `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or breaks a rule (400/422).
    Invalid,
    /// The input was understood but cannot be processed (422).
    Unprocessable,
    /// No or bad credentials (401).
    Unauthenticated,
    /// Authenticated, but not allowed (403).
    Forbidden,
    /// No such thing, or not yours (404).
    NotFound,
    /// The state of things does not allow it (409).
    Conflict,
    /// Money could not move (402).
    Payment,
    /// Too many requests (429).
    RateLimited,
    /// The body is larger than allowed (413).
    TooLarge,
    /// The client stopped sending its request's body (408).
    TimedOut,
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// Overloaded or a dependency is down (503).
    Unavailable,
    /// A bug or an outage (500); the cause is logged, never shown.
    Internal,
}

/// A failure with a stable code, a message for people, and optionally the parameter at fault.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub code: Cow<'static, str>,
    pub message: String,
    pub param: Option<String>,
    /// The figures the message names (an amount, a limit, a product), by name, so that a page
    /// can say them in its own language (see `web::refusals`). The API shows the message only.
    /// (A boxed slice, not a `Vec`: every `Result` of the services carries this type, so it
    /// stays small.)
    pub args: Box<[(&'static str, String)]>,
    /// Seconds a client should wait before retrying (429 and 503).
    pub retry_after_s: Option<u64>,
    pub source: Option<anyhow::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: code.into(),
            message: message.into(),
            param: None,
            args: Box::default(),
            retry_after_s: None,
            source: None,
        }
    }

    pub fn invalid(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::Invalid, code, message)
    }

    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::NotFound, code, message)
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::Conflict, code, message)
    }

    pub fn unauthenticated(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::Unauthenticated, code, message)
    }

    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::Forbidden, code, message)
    }

    pub fn rate_limited(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        retry_after_s: u64,
    ) -> Self {
        let mut e = Error::new(Kind::RateLimited, code, message);
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// Money could not move (402): insufficient funds, an expired or used pay code, an over-refund.
    pub fn payment(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::new(Kind::Payment, code, message)
    }

    /// Overloaded: try again after `retry_after_s` (503).
    pub fn unavailable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        retry_after_s: u64,
    ) -> Self {
        let mut e = Error::new(Kind::Unavailable, code, message);
        e.retry_after_s = Some(retry_after_s);
        e
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Error::new(
            Kind::Internal,
            "internal_error",
            "Something went wrong on our side.",
        );
        e.source = Some(source.into());
        e
    }

    /// Names the request parameter at fault.
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Keeps a figure the message names, as `name` (see [`Error::args`]).
    pub fn arg(mut self, name: &'static str, value: impl ToString) -> Self {
        let mut args = std::mem::take(&mut self.args).into_vec();
        args.push((name, value.to_string()));
        self.args = args.into_boxed_slice();
        self
    }

    /// [`Error::arg`] for a figure that may be missing (then nothing is kept).
    pub fn arg_some(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.arg(name, v),
            None => self,
        }
    }
}

impl From<DbError> for Error {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Conflict { .. } => Error::conflict(
                "resource_conflict",
                "That conflicts with something that already exists.",
            ),
            other => Error::internal(other),
        }
    }
}

impl From<o2o_geo::GeoError> for Error {
    fn from(err: o2o_geo::GeoError) -> Self {
        Error::invalid(err.code(), err.to_string())
    }
}

impl std::error::Error for Error {}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}
