//! Request bodies: JSON parsed straight into domain input types, with every way a body can be
//! wrong answered by a specific 4xx code: `body_too_large`, `unsupported_media_type`,
//! `invalid_json`, `unknown_field`, `missing_field`, `invalid_type`, `invalid_value`
//! (`param` names the field at fault).
//!
//! [`Json`] is the extractor every handler uses; [`Idem`] reads the `Idempotency-Key` header.

use crate::error::{Error, Kind};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The largest JSON body any endpoint accepts.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// A JSON body parsed into `T`, plus the hash an idempotency key is stored with (see
/// [`request_hasher`]).
pub struct Json<T> {
    pub value: T,
    pub body_sha256: String,
}

/// What an Idempotency-Key is stored with: the SHA-256 of the request's method and path, then
/// its body. The path names what the request changes (a store's tables, a product's photo),
/// and two endpoints may take the same body (a top-up and a withdrawal): one key sent to
/// another path, or with another body, is a reused key (409), never answered with the first
/// reply. Start with [`request_hasher`], add the body, then [`finish_hash`].
pub fn request_hasher(method: &axum::http::Method, path: &str) -> Sha256 {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash
}

/// The hex digest of a [`request_hasher`] given its body.
pub fn finish_hash(mut hash: Sha256, body: &[u8]) -> String {
    hash.update(body);
    hex::encode(hash.finalize())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(not_json());
        }
        let (hash, bytes) = read_body(req, state).await?;
        Json::parsed(hash, &bytes)
    }
}

impl<T: DeserializeOwned> Json<T> {
    fn parsed(hash: Sha256, bytes: &[u8]) -> Result<Json<T>, Error> {
        Ok(Json {
            value: parse_json(bytes)?,
            body_sha256: finish_hash(hash, bytes),
        })
    }
}

/// A JSON body that may be left out: no bytes at all (whatever Content-Type a client library
/// adds) is `T::default()`; any bytes must be JSON, as for [`Json`]. Its hash names the method
/// and path in both cases (see [`request_hasher`]), so handlers need no key scoping of their own.
pub struct OptionalJson<T> {
    pub value: T,
    pub body_sha256: String,
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let (hash, bytes) = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson {
                value: T::default(),
                body_sha256: finish_hash(hash, b""),
            });
        }
        if !json {
            return Err(not_json());
        }
        let Json { value, body_sha256 } = Json::parsed(hash, &bytes)?;
        Ok(OptionalJson { value, body_sha256 })
    }
}

fn is_json(req: &Request) -> bool {
    media_type_is(req, |mime| {
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

fn not_json() -> Error {
    Error::new(
        Kind::UnsupportedMediaType,
        "unsupported_media_type",
        "Send the body as JSON with Content-Type: application/json.",
    )
}

/// A request's body, read whole, and its [`request_hasher`] (not yet given the body).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<(Sha256, Bytes), Error> {
    // The path as the client sent it (a nested router's handler sees it shortened).
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.0.path());
    let hash = request_hasher(req.method(), path);
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        unread_body(
            &rejection,
            &format!("The body is larger than {MAX_JSON_BODY_BYTES} bytes."),
        )
    })?;
    Ok((hash, bytes))
}

/// Whether the request's Content-Type, without its parameters and in lower case, passes `test`
/// (false when there is none).
pub fn media_type_is(req: &Request, test: impl Fn(&str) -> bool) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| test(&mime.trim().to_ascii_lowercase()))
}

/// Why a body could not be read: it is larger than the route takes (413, with `too_large` as
/// the message), or the client went quiet for longer than the body may (408, see
/// [`super::BODY_IDLE_TIMEOUT`]),
/// or sent less than it announced, or broke off (400).
pub fn unread_body(rejection: &axum::extract::rejection::BytesRejection, too_large: &str) -> Error {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return Error::new(Kind::TooLarge, "body_too_large", too_large.to_owned());
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return Error::new(
                Kind::TimedOut,
                "body_timeout",
                "The request body stopped arriving before its end; send it whole.",
            );
        }
        cause = e.source();
    }
    Error::invalid("invalid_body", "The request body could not be read.")
}

/// Parses JSON bytes into `T`, classifying the failure and naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if result.is_ok() && de.end().is_err() {
        return Err(Error::invalid(
            "invalid_json",
            "The body has trailing characters after the JSON value.",
        ));
    }
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let text = inner.to_string();
        let param = if path.is_empty() || path == "." {
            None
        } else {
            Some(path)
        };
        let (code, param) = match inner.classify() {
            // serde_json reports a value of the wrong kind where an enum is expected (a number
            // for a string of a fixed set) as "expected value", a syntax error, though the body
            // is well-formed JSON: it is that field's type that is wrong.
            serde_json::error::Category::Syntax
                if param.is_some()
                    && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
            {
                let mut e = Error::invalid(
                    "invalid_type",
                    format!(
                        "invalid type: {} takes a value of another kind",
                        param.as_deref().unwrap_or_default()
                    ),
                );
                e.param = param;
                return e;
            }
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => ("invalid_json", None),
            serde_json::error::Category::Data => {
                if let Some(field) = backticked(&text, "unknown field `") {
                    // The path already ends at the unknown field.
                    ("unknown_field", param.or(Some(field)))
                } else if let Some(field) = backticked(&text, "missing field `") {
                    let full = match param {
                        Some(p) => format!("{p}.{field}"),
                        None => field,
                    };
                    ("missing_field", Some(full))
                } else if text.starts_with("invalid type") {
                    ("invalid_type", param)
                } else if text.starts_with("unknown variant") {
                    ("invalid_enum_value", param)
                } else {
                    ("invalid_value", param)
                }
            }
        };
        let message = strip_position(&text);
        let mut e = Error::invalid(code, message);
        e.param = param;
        e
    })
}

fn backticked(text: &str, prefix: &str) -> Option<String> {
    let rest = text.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

/// serde_json appends " at line 1 column 17"; keep the sentence, drop the position for data errors.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// The `Idempotency-Key` header, when the caller sent one (at most 255 characters).
#[derive(Clone, Debug)]
pub struct Idem(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Idem {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("idempotency-key") {
            None => Ok(Idem(None)),
            Some(v) => {
                // A header value may also hold tabs (and is then still `to_str`): refused too; spaces
                // are printable, and kept.
                let key = v
                    .to_str()
                    .ok()
                    .filter(|k| !k.bytes().any(|b| b.is_ascii_control()))
                    .ok_or_else(|| {
                        Error::invalid(
                            "idempotency_key_invalid",
                            "Idempotency-Key must be printable ASCII.",
                        )
                    })?;
                if key.is_empty() || key.len() > 255 {
                    return Err(Error::invalid(
                        "idempotency_key_invalid",
                        "Idempotency-Key must be 1 to 255 characters.",
                    ));
                }
                Ok(Idem(Some(key.to_owned())))
            }
        }
    }
}

/// A JSON response with its status, kept as text so an idempotent replay returns the same bytes.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn new(status: axum::http::StatusCode, value: &impl Serialize) -> Result<Reply, Error> {
        Ok(Reply {
            status: status.as_u16(),
            body: serde_json::to_string(value).map_err(Error::internal)?,
        })
    }

    pub fn ok(value: &impl Serialize) -> Result<Reply, Error> {
        Reply::new(axum::http::StatusCode::OK, value)
    }

    pub fn created(value: &impl Serialize) -> Result<Reply, Error> {
        Reply::new(axum::http::StatusCode::CREATED, value)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status =
            axum::http::StatusCode::from_u16(self.status).unwrap_or(axum::http::StatusCode::OK);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        count: u32,
        mode: Mode,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Trading,
    }

    fn code_of(body: &str) -> (String, Option<String>) {
        let e = parse_json::<Input>(body.as_bytes()).unwrap_err();
        (e.code.to_string(), e.param)
    }

    #[tokio::test]
    async fn an_idempotency_key_is_printable_ascii_of_1_to_255_characters() {
        async fn key(value: &[u8]) -> Result<Idem, Error> {
            let (mut parts, ()) = axum::http::Request::builder()
                .header(
                    "idempotency-key",
                    axum::http::HeaderValue::from_bytes(value).expect("a header value"),
                )
                .body(())
                .expect("a request")
                .into_parts();
            Idem::from_request_parts(&mut parts, &()).await
        }
        assert_eq!(
            key(b"order-42 retry").await.unwrap().0.as_deref(),
            Some("order-42 retry")
        );
        for bad in [&b"a\tb"[..], b"", &[b'k'; 256], "\u{4e2d}".as_bytes()] {
            let e = key(bad).await.unwrap_err();
            assert_eq!(e.code, "idempotency_key_invalid", "{bad:?}");
        }
    }

    #[test]
    fn each_kind_of_bad_body_gets_its_own_code() {
        assert_eq!(code_of("{").0, "invalid_json");
        assert_eq!(code_of("[1,2]").0, "invalid_type");
        assert_eq!(
            code_of(r#"{"name":"a","count":1,"mode":"trading","x":1}"#),
            ("unknown_field".into(), Some("x".into()))
        );
        assert_eq!(
            code_of(r#"{"name":"a","mode":"trading"}"#),
            ("missing_field".into(), Some("count".into()))
        );
        assert_eq!(
            code_of(r#"{"name":"a","count":"1","mode":"trading"}"#),
            ("invalid_type".into(), Some("count".into()))
        );
        assert_eq!(
            code_of(r#"{"name":"a","count":-1,"mode":"trading"}"#),
            ("invalid_value".into(), Some("count".into()))
        );
        assert_eq!(
            code_of(r#"{"name":"a","count":1,"mode":"listing"}"#),
            ("invalid_enum_value".into(), Some("mode".into()))
        );
        assert_eq!(
            code_of(r#"{"name":"a","count":1,"mode":"trading"} x"#).0,
            "invalid_json"
        );
        // A number, a list or true where one of a fixed set of words goes: the field's type.
        for mode in ["123", "[]", "true"] {
            assert_eq!(
                code_of(&format!(r#"{{"name":"a","count":1,"mode":{mode}}}"#)),
                ("invalid_type".into(), Some("mode".into())),
                "{mode}"
            );
        }
        // Broken JSON stays broken JSON, wherever it breaks.
        assert_eq!(
            code_of(r#"{"name":"a","count":1,"mode":12"#).0,
            "invalid_json"
        );
    }
}
