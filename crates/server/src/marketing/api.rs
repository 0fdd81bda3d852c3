//! Coupons' JSON routes.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::{
    ConsumerAuth, Idem, Json, List, MaybeAuth, MerchantAuth, OptionalJson, PageParams, Path, Query,
    Reply, error::ErrorBody,
};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Creates a coupon template (manager or key). Only `merchant_id`, `name`, `kind` with its value,
/// `currency` and `total_stock` are required.
#[utoipa::path(post, path = "/v1/coupon-templates", tag = "marketing", security(("bearer" = [])),
    request_body = CreateTemplate, responses((status = 201, body = Template), (status = 400, body = ErrorBody)))]
async fn create_template(
    State(app): State<AppState>,
    auth: MerchantAuth,
    body: Json<CreateTemplate>,
) -> Result<(axum::http::StatusCode, axum::Json<Template>)> {
    auth.require(crate::identity::Role::Manager)?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(service::create_template(&app, &auth.scope, body.value).await?),
    ))
}

/// The merchant's coupon templates, newest first.
#[utoipa::path(get, path = "/v1/coupon-templates", tag = "marketing", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = List<Template>)))]
async fn list_templates(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<List<Template>>> {
    let page = q.parse()?;
    Ok(axum::Json(
        service::templates(&app, &auth.scope, &page).await?,
    ))
}

/// A template with its results: issued, used, expired, the discount given, sales with it.
#[utoipa::path(get, path = "/v1/coupon-templates/{id}", tag = "marketing", security(("bearer" = [])),
    responses((status = 200, body = TemplateStats), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<TemplateStats>> {
    Ok(axum::Json(service::stats(&app, &auth.scope, &id).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    /// How the consumer came to it: `center` (default), `campaign`.
    pub via: Option<String>,
}

/// Claims a coupon (a consumer logged in with a phone). Sold out is `409 coupon_sold_out`, over
/// the limit `409 coupon_limit_reached`, outside the claim window `409 coupon_not_claimable`.
#[utoipa::path(post, path = "/v1/coupon-templates/{id}/claims", tag = "marketing", security(("bearer" = [])),
    request_body = Option<ClaimInput>,
    responses((status = 201, body = Coupon), (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn claim(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<ClaimInput>,
) -> Result<Reply> {
    let via = match body.value.via.as_deref() {
        None | Some("center") => "center",
        Some("campaign") => "campaign",
        Some(_) => {
            return Err(Error::invalid("via_invalid", "via is center or campaign.").param("via"));
        }
    };
    service::claim(&app, &p, &id, via, key, &body.body_sha256).await
}

/// The caller's coupons (active, used, expired), newest first.
#[utoipa::path(get, path = "/v1/me/coupons", tag = "marketing", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = List<Coupon>)))]
async fn my_coupons(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<List<Coupon>>> {
    let page = q.parse()?;
    Ok(axum::Json(service::mine(&app, &p.id, &page).await?))
}

/// A coupon's code for the cashier to scan (a short-lived signed token; show it as a QR code).
#[derive(Serialize, ToSchema)]
pub struct CouponCodeOut {
    /// `O2O:…`
    pub code: String,
    pub coupon_id: String,
    pub expires_at: String,
}

/// A fresh code for one of the caller's active coupons, for the cashier to scan at the counter
/// (`POST /v1/scan` tells what it is; the pay-code or cash payment it is sent with uses it).
/// Valid for five minutes; a used or expired coupon answers `409`.
#[utoipa::path(post, path = "/v1/me/coupons/{id}/codes", tag = "marketing", security(("bearer" = [])),
    params(("id" = String, Path, description = "cpn_ id")),
    responses((status = 201, body = CouponCodeOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn coupon_code(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<Reply> {
    let (code, expires_at) = service::coupon_code(&app, &p.id, &id).await?;
    Reply::created(&CouponCodeOut {
        code,
        coupon_id: id,
        expires_at: crate::db::rfc3339(expires_at),
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsableParams {
    pub store_id: String,
    /// `store_pay` (default) or an order channel.
    pub channel: Option<String>,
    /// The bill in minor units.
    pub amount: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UsableCoupon {
    pub coupon: Coupon,
    /// What it would take off this bill.
    pub discount: i64,
}

/// The caller's coupons usable on a bill at a store, best first (checkout preselects the first).
#[utoipa::path(get, path = "/v1/me/coupons/usable", tag = "marketing", security(("bearer" = [])), params(UsableParams),
    responses((status = 200, body = List<UsableCoupon>)))]
async fn usable(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(q): Query<UsableParams>,
) -> Result<axum::Json<List<UsableCoupon>>> {
    let channel = q.channel.unwrap_or_else(|| "store_pay".into());
    if !service::CHANNELS.contains(&channel.as_str()) {
        return Err(Error::invalid("channel_invalid", "Unknown channel.").param("channel"));
    }
    let amount =
        crate::payments::service::parse_amount(q.amount, crate::payments::service::MAX_PAYMENT)?;
    let list = service::usable(&app, &p.id, &q.store_id, &channel, amount).await?;
    let data: Vec<UsableCoupon> = list
        .into_iter()
        .map(|(coupon, discount)| UsableCoupon { coupon, discount })
        .collect();
    // Every usable coupon at once, best first.
    Ok(axum::Json(List::whole(data)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CenterParams {
    /// `lat,lng`.
    pub near: String,
}

/// The coupon center: coupons claimable from stores near the caller, most useful first.
#[utoipa::path(get, path = "/v1/coupon-center", tag = "marketing", params(CenterParams),
    responses((status = 200, body = List<Offer>), (status = 400, body = ErrorBody)))]
async fn center(
    State(app): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Query(q): Query<CenterParams>,
) -> Result<axum::Json<List<Offer>>> {
    let near = o2o_geo::LatLng::parse(&q.near)
        .map_err(|e| Error::invalid("near_invalid", e.to_string()).param("near"))?;
    let offers = service::center(&app, p.as_ref(), near).await?;
    Ok(axum::Json(List::whole(offers)))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(get_template))
        .routes(routes!(claim))
        .routes(routes!(my_coupons))
        .routes(routes!(coupon_code))
        .routes(routes!(usable))
        .routes(routes!(center))
}
