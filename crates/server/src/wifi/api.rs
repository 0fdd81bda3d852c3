//! WiFi's JSON routes: a store's WiFi key (managers make or rotate it; the secret is shown
//! once), and the grant check a store's router calls with that key.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::idempotency::{self, Begun};
use crate::http::{Idem, Json, MerchantAuth, OptionalJson, Path, Reply, error::ErrorBody};
use crate::identity::Role;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Makes the store's WiFi key, or rotates it (the old one stops working at once); managers and
/// owners. The secret (`wk_…`) is in this answer only and is stored hashed. The store's router
/// sends it to `POST /v1/wifi/grants/verify`.
#[utoipa::path(post, path = "/v1/stores/{id}/wifi-key", tag = "wifi", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")), request_body(content = Option<CreateWifiKey>),
    responses((status = 201, body = WifiKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn create_key(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: OptionalJson<CreateWifiKey>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let (input, sha) = (body.value, body.body_sha256);
    let mut write = match idempotency::begin(&app.db, &auth.principal.id, key, &sha).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Fresh(write) => write,
    };
    let created = service::create_key(write.tx(), &auth.scope, &id, input).await?;
    let reply = Reply::created(&created)?;
    let stored = serde_json::to_string(&WifiKey {
        secret: None,
        ..created
    })
    .map_err(Error::internal)?;
    write.finish_storing(reply, stored).await
}

/// The store's WiFi key, without its secret.
#[utoipa::path(get, path = "/v1/stores/{id}/wifi-key", tag = "wifi", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")),
    responses((status = 200, body = WifiKey), (status = 404, body = ErrorBody)))]
async fn get_key(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WifiKey>> {
    Ok(axum::Json(
        service::get_key(&app.db, &auth.scope, &id).await?,
    ))
}

/// The router's check (authenticated by the store's WiFi key, `Authorization: Bearer wk_…`):
/// may the device with this MAC use the internet? `allowed` is true while a consumer's login
/// grant for that device at this store lasts (and, when `tok` is sent, was made with that
/// router token); unknown or expired devices get `allowed: false`. Changes nothing.
#[utoipa::path(post, path = "/v1/wifi/grants/verify", tag = "wifi", security(("bearer" = [])),
    request_body = VerifyGrant,
    responses((status = 200, body = GrantVerdict), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn verify(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Json<VerifyGrant>,
) -> Result<axum::Json<GrantVerdict>> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let key = service::authenticate(&app.db, secret).await?;
    Ok(axum::Json(
        service::verify(&app.db, &key, body.value).await?,
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, get_key))
        .routes(routes!(verify))
}
