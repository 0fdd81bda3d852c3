//! Who may call a handler is decided by its signature: [`Auth`] (anyone logged in, guests
//! included), [`ConsumerAuth`], [`MerchantAuth`] (staff or an `sk_` key, with the merchant's
//! [`MerchantScope`]), [`OperatorAuth`], or [`MaybeAuth`] for public endpoints.
//!
//! The token comes from `Authorization: Bearer …` or, for pages, the `o2o_session` cookie. A JSON
//! call authenticated by the cookie that changes state must also send the session's CSRF token
//! in `X-CSRF-Token`, because browsers attach cookies to cross-site requests.

use crate::app::AppState;
use crate::db::MerchantScope;
use crate::error::{Error, Result};
use crate::identity::{Principal, PrincipalKind, Role, service};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use std::net::SocketAddr;

/// The cookie that carries a page session.
pub const SESSION_COOKIE: &str = "o2o_session";

/// The session token a request carries, and whether it came in a cookie.
fn token_of(parts: &Parts) -> Option<(String, bool)> {
    if let Some(value) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut it = value.splitn(2, ' ');
        let scheme = it.next().unwrap_or("");
        let token = it.next().unwrap_or("").trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some((token.to_owned(), false));
        }
        return Some((String::new(), false));
    }
    cookie_value(&parts.headers, SESSION_COOKIE).map(|t| (t, true))
}

/// Reads one cookie from the request.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The client's address, for rate limits.
pub fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[derive(Clone)]
struct Resolved(Option<Principal>);

async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Option<Principal>> {
    if let Some(Resolved(p)) = parts.extensions.get::<Resolved>() {
        return Ok(p.clone());
    }
    let principal = match token_of(parts) {
        None => None,
        Some((token, via_cookie)) => {
            let principal = service::authenticate(&state.db, &token).await?;
            match principal {
                None if via_cookie => None,
                None => {
                    return Err(Error::unauthenticated(
                        "invalid_token",
                        "The token is unknown, expired or revoked.",
                    ));
                }
                Some(p) => {
                    let changes_state =
                        !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
                    if via_cookie && changes_state && parts.uri.path().starts_with("/v1/") {
                        let sent = parts
                            .headers
                            .get("x-csrf-token")
                            .and_then(|v| v.to_str().ok());
                        if sent.is_none() || sent != p.csrf.as_deref() {
                            return Err(Error::forbidden(
                                "csrf_failed",
                                "Send the session's CSRF token in X-CSRF-Token.",
                            ));
                        }
                    }
                    Some(p)
                }
            }
        }
    };
    parts.extensions.insert(Resolved(principal.clone()));
    Ok(principal)
}

fn login_required() -> Error {
    Error::unauthenticated(
        "authentication_required",
        "Log in, or send Authorization: Bearer <token>.",
    )
}

/// Anyone authenticated.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        resolve(parts, state)
            .await?
            .map(Auth)
            .ok_or_else(login_required)
    }
}

/// The caller if authenticated; public endpoints use this.
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        resolve(parts, state).await.map(MaybeAuth)
    }
}

/// A consumer (a guest or logged in with a phone).
pub struct ConsumerAuth(pub Principal);

impl FromRequestParts<AppState> for ConsumerAuth {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let p = resolve(parts, state).await?.ok_or_else(login_required)?;
        if p.kind != PrincipalKind::Consumer {
            return Err(Error::forbidden(
                "consumer_only",
                "Only consumers can do this.",
            ));
        }
        Ok(ConsumerAuth(p))
    }
}

/// A merchant's staff member or the merchant's own server (`sk_` key), with the merchant's scope.
pub struct MerchantAuth {
    pub principal: Principal,
    pub scope: MerchantScope,
    pub role: Role,
}

impl MerchantAuth {
    /// Fails with 403 unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::forbidden(
                "insufficient_role",
                format!("This needs the {} role or higher.", role.as_str()),
            ))
        }
    }

    /// Fails with 403 unless a person (staff), not an API key, is calling.
    pub fn require_staff(&self) -> Result<()> {
        if self.principal.kind == PrincipalKind::Staff {
            Ok(())
        } else {
            Err(Error::forbidden(
                "staff_only",
                "Only a staff member can do this.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for MerchantAuth {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let p = resolve(parts, state).await?.ok_or_else(login_required)?;
        match (p.kind, &p.merchant_id, p.role) {
            (PrincipalKind::Staff | PrincipalKind::ApiKey, Some(mid), Some(role)) => {
                Ok(MerchantAuth {
                    scope: MerchantScope::authenticated(mid.clone()),
                    role,
                    principal: p,
                })
            }
            _ => Err(Error::forbidden(
                "merchant_only",
                "Only a merchant's staff or API key can do this.",
            )),
        }
    }
}

/// A platform operator.
pub struct OperatorAuth(pub Principal);

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let p = resolve(parts, state).await?.ok_or_else(login_required)?;
        if p.kind != PrincipalKind::Operator {
            return Err(Error::forbidden(
                "operator_only",
                "Only a platform operator can do this.",
            ));
        }
        Ok(OperatorAuth(p))
    }
}

/// The client's address (for rate limits and anonymous idempotency scopes).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Ok(ClientIp(client_ip(parts)))
    }
}
