//! Stores' JSON routes.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::idempotency::{self, Begun};
use crate::http::{
    ConsumerAuth, Idem, Json, List, MaybeAuth, MerchantAuth, NoParams, PageParams, Path, Query,
    Reply, error::ErrorBody,
};
use crate::identity::{PrincipalKind, Role};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Opens one of the caller's stores.
#[utoipa::path(post, path = "/v1/stores", tag = "stores", security(("bearer" = [])), request_body = CreateStore,
    responses((status = 201, body = Store), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_store(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateStore>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let store = service::create_store(write.tx(), &auth.scope, body.value).await?;
    write.finish(Reply::created(&store)?).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NearParams {
    /// `lat,lng`, e.g. `31.2304,121.4737`.
    pub near: Option<String>,
    /// Search radius in metres (1 to 50,000; default 5,000).
    pub radius_m: Option<u32>,
    /// At most this many stores (1 to 100; default 20).
    pub limit: Option<i64>,
}

/// Public discovery: stores near a point, nearest first, with `distance_m` and `open_now`.
#[utoipa::path(get, path = "/v1/stores", tag = "stores", params(NearParams),
    responses((status = 200, body = List<Store>), (status = 400, body = ErrorBody)))]
async fn list_stores(
    State(app): State<AppState>,
    Query(params): Query<NearParams>,
) -> Result<axum::Json<List<Store>>> {
    let near = params
        .near
        .ok_or_else(|| Error::invalid("near_required", "Give ?near=<lat>,<lng>.").param("near"))?;
    let center = o2o_geo::LatLng::parse(&near).map_err(|e| Error::from(e).param("near"))?;
    let radius = o2o_geo::Radius::parse_m(params.radius_m.unwrap_or(5_000))
        .map_err(|e| Error::from(e).param("radius_m"))?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(
            Error::invalid("limit_out_of_range", "limit must be between 1 and 100.").param("limit"),
        );
    }
    Ok(axum::Json(
        service::nearby(&app.db, center, radius, limit as usize).await?,
    ))
}

/// A store, as the public sees it. A consumer's view is remembered in their recent stores.
#[utoipa::path(get, path = "/v1/stores/{id}", tag = "stores", params(("id" = String, Path, description = "sto_ id")),
    responses((status = 200, body = Store), (status = 404, body = ErrorBody)))]
async fn get_store(
    State(app): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Store>> {
    let store = service::get_store(&app.db, &id).await?;
    if let Some(p) = caller.filter(|p| p.kind == PrincipalKind::Consumer) {
        service::record_visit(&app.db, &p.id, &store.id).await?;
    }
    Ok(axum::Json(store))
}

/// Changes some fields of one of the caller's stores.
#[utoipa::path(patch, path = "/v1/stores/{id}", tag = "stores", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")), request_body = UpdateStore,
    responses((status = 200, body = Store), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_store(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    body: Json<UpdateStore>,
) -> Result<axum::Json<Store>> {
    auth.require(Role::Manager)?;
    let mut tx = app.db.begin().await?;
    let store = service::update_store(&mut tx, &auth.scope, &id, body.value).await?;
    tx.commit().await?;
    Ok(axum::Json(store))
}

/// Adds a table to one of the caller's stores.
#[utoipa::path(post, path = "/v1/stores/{id}/tables", tag = "stores", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")), request_body = CreateTable,
    responses((status = 201, body = Table), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_table(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: Json<CreateTable>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    // The store is in the path, which the body's hash names too (one key, two stores: 409).
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let table = service::add_table(write.tx(), &auth.scope, &id, body.value).await?;
    write.finish(Reply::created(&table)?).await
}

/// The tables of one of the caller's stores, by label.
#[utoipa::path(get, path = "/v1/stores/{id}/tables", tag = "stores", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")),
    responses((status = 200, body = List<Table>), (status = 404, body = ErrorBody)))]
async fn list_tables(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    _none: Query<NoParams>,
) -> Result<axum::Json<List<Table>>> {
    let data = service::list_tables(&app.db, &auth.scope, &id).await?;
    Ok(axum::Json(List::whole(data)))
}

/// The caller's own stores, newest first.
#[utoipa::path(get, path = "/v1/merchants/{id}/stores", tag = "stores", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), PageParams),
    responses((status = 200, body = List<Store>), (status = 404, body = ErrorBody)))]
async fn list_merchant_stores(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<Store>>> {
    crate::merchants::service::own(&auth.scope, &id)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::list_own_stores(&app.db, &auth.scope, &page).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct StoreList {
    pub data: Vec<Store>,
}

/// The stores the consumer looked at lately (guests too; kept at login).
#[utoipa::path(get, path = "/v1/me/recent-stores", tag = "stores", security(("bearer" = [])),
    responses((status = 200, body = StoreList), (status = 401, body = ErrorBody)))]
async fn recent_stores(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
) -> Result<axum::Json<StoreList>> {
    Ok(axum::Json(StoreList {
        data: service::recent_visits(&app.db, &p.id, 20).await?,
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_store, list_stores))
        .routes(routes!(get_store, update_store))
        .routes(routes!(create_table, list_tables))
        .routes(routes!(list_merchant_stores))
        .routes(routes!(recent_stores))
}
