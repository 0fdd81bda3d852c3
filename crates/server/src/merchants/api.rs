//! Merchants' JSON routes.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::idempotency::{self, Begun};
use crate::http::{
    ClientIp, Idem, Json, List, MaybeAuth, MerchantAuth, OperatorAuth, OptionalJson, PageParams,
    Path, Query, Reply, error::ErrorBody,
};
use crate::identity::Role;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Signs a merchant up with its owner's login. `listing` merchants publish stores and offers but
/// take no payments.
#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", request_body = CreateMerchant,
    responses((status = 201, body = MerchantCreated), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_merchant(
    State(app): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    ClientIp(ip): ClientIp,
    Idem(key): Idem,
    body: Json<CreateMerchant>,
) -> Result<Reply> {
    let scope = caller.map(|p| p.id).unwrap_or_else(|| format!("ip:{ip}"));
    if let Some(reply) =
        idempotency::lookup(&app.db, &scope, key.as_deref(), &body.body_sha256).await?
    {
        return Ok(reply);
    }
    let input = service::NewMerchant::parse(body.value, &app.passwords).await?;
    let mut write = match idempotency::begin(&app.db, &scope, key, &body.body_sha256).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Fresh(write) => write,
    };
    let (created, _scope) = service::create_merchant(write.tx(), input).await?;
    write.finish(Reply::created(&created)?).await
}

/// The caller's own merchant; any other id is 404.
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")),
    responses((status = 200, body = Merchant), (status = 404, body = ErrorBody)))]
async fn get_merchant(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Merchant>> {
    Ok(axum::Json(
        service::get_merchant(&app.db, &auth.scope, &id).await?,
    ))
}

/// Changes the caller's own merchant (owners): the time zone its days are counted in.
#[utoipa::path(patch, path = "/v1/merchants/{id}", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body = UpdateMerchant,
    responses((status = 200, body = Merchant), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_merchant(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    body: Json<UpdateMerchant>,
) -> Result<axum::Json<Merchant>> {
    service::own(&auth.scope, &id)?;
    auth.require(Role::Owner)?;
    let merchant = match body.value.timezone {
        Some(timezone) => {
            service::set_timezone(&app.db, &auth.scope, &id, timezone.as_deref()).await?
        }
        None => service::get_merchant(&app.db, &auth.scope, &id).await?,
    };
    Ok(axum::Json(merchant))
}

/// Adds a staff member. Owners add any role; managers add cashiers.
#[utoipa::path(post, path = "/v1/merchants/{id}/staff", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body = CreateStaff,
    responses((status = 201, body = Staff), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_staff(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: Json<CreateStaff>,
) -> Result<Reply> {
    service::own(&auth.scope, &id)?;
    auth.require(Role::Manager)?;
    if let Some(reply) = idempotency::lookup(
        &app.db,
        &auth.principal.id,
        key.as_deref(),
        &body.body_sha256,
    )
    .await?
    {
        return Ok(reply);
    }
    let input = service::NewStaff::parse(body.value, &app.passwords).await?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let staff = service::add_staff(write.tx(), &auth.scope, auth.role, input).await?;
    write.finish(Reply::created(&staff)?).await
}

/// The merchant's staff, newest first.
#[utoipa::path(get, path = "/v1/merchants/{id}/staff", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), PageParams),
    responses((status = 200, body = List<Staff>), (status = 404, body = ErrorBody)))]
async fn list_staff(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<Staff>>> {
    service::own(&auth.scope, &id)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::list_staff(&app.db, &auth.scope, &page).await?,
    ))
}

/// Creates an API key for the merchant's own servers (owners only). The secret is shown once.
#[utoipa::path(post, path = "/v1/merchants/{id}/api-keys", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body = Option<CreateApiKey>,
    responses((status = 201, body = ApiKeyCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_api_key(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: OptionalJson<CreateApiKey>,
) -> Result<Reply> {
    service::own(&auth.scope, &id)?;
    auth.require_staff()?;
    auth.require(Role::Owner)?;
    let (input, sha) = (body.value, body.body_sha256);
    let mut write = match idempotency::begin(&app.db, &auth.principal.id, key, &sha).await? {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Fresh(write) => write,
    };
    let created = service::create_api_key(write.tx(), &auth.scope, input).await?;
    let reply = Reply::created(&created)?;
    let stored = serde_json::to_string(&ApiKeyCreated {
        secret: None,
        ..created
    })
    .map_err(Error::internal)?;
    write.finish_storing(reply, stored).await
}

/// The merchant's API keys (without secrets), newest first.
#[utoipa::path(get, path = "/v1/merchants/{id}/api-keys", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), PageParams),
    responses((status = 200, body = List<ApiKey>), (status = 404, body = ErrorBody)))]
async fn list_api_keys(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<ApiKey>>> {
    service::own(&auth.scope, &id)?;
    auth.require(Role::Manager)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::list_api_keys(&app.db, &auth.scope, &page).await?,
    ))
}

/// Revokes an API key; it stops working at once.
#[utoipa::path(delete, path = "/v1/merchants/{id}/api-keys/{key_id}", tag = "merchants", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), ("key_id" = String, Path, description = "key_ id")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<axum::Json<ApiKey>> {
    service::own(&auth.scope, &id)?;
    auth.require_staff()?;
    auth.require(Role::Owner)?;
    let mut tx = app.db.begin().await?;
    let key = service::revoke_api_key(&mut tx, &auth.scope, &key_id).await?;
    tx.commit().await?;
    Ok(axum::Json(key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub verified: bool,
}

/// Marks a merchant verified after the platform checked it (operators only).
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/verification", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body = Verification,
    responses((status = 200, body = Merchant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn verify_merchant(
    State(app): State<AppState>,
    _operator: OperatorAuth,
    Path(id): Path<String>,
    body: Json<Verification>,
) -> Result<axum::Json<Merchant>> {
    let mut tx = app.db.begin().await?;
    service::set_verified(&mut tx, &id, body.value.verified).await?;
    tx.commit().await?;
    service::public_merchant(&app.db, &id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Error::not_found("merchant_not_found", "No such merchant."))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeSetting {
    /// Basis points of each captured payment (60 = 0.6 %), 0 to 1000.
    pub fee_bps: i64,
}

#[derive(Serialize, ToSchema)]
pub struct FeeSet {
    pub merchant_id: String,
    pub fee_bps: i64,
}

/// Sets the platform fee a merchant pays (operators).
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/fee", tag = "admin", security(("bearer" = [])),
    request_body = FeeSetting, responses((status = 200, body = FeeSet), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_fee(
    State(app): State<AppState>,
    _operator: OperatorAuth,
    Path(id): Path<String>,
    body: Json<FeeSetting>,
) -> Result<axum::Json<FeeSet>> {
    let mut tx = app.db.begin().await?;
    service::set_fee(&mut tx, &id, body.value.fee_bps).await?;
    tx.commit().await?;
    Ok(axum::Json(FeeSet {
        merchant_id: id,
        fee_bps: body.value.fee_bps,
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_merchant))
        .routes(routes!(get_merchant, update_merchant))
        .routes(routes!(create_staff, list_staff))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(verify_merchant))
        .routes(routes!(set_fee))
}
