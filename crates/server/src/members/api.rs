//! Members' JSON routes: a merchant's program and promotion budget (staff), and a consumer's
//! cards (join, read, top up, close). Paying with a card is `POST /v1/payments` with
//! `source: "crd_…"`.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::{
    ConsumerAuth, Idem, Json, List, MerchantAuth, NoParams, Path, Query, Reply, error::ErrorBody,
};
use crate::identity::Role;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

fn own_merchant(auth: &MerchantAuth, id: &str) -> Result<()> {
    if auth.scope.owns(id) {
        Ok(())
    } else {
        Err(Error::not_found("merchant_not_found", "No such merchant."))
    }
}

/// Creates or replaces the merchant's member program (manager or owner).
#[utoipa::path(put, path = "/v1/member-programs/{merchant_id}", tag = "members", security(("bearer" = [])),
    request_body = PutProgram,
    responses((status = 200, body = Program), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn put_program(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(merchant_id): Path<String>,
    body: Json<PutProgram>,
) -> Result<axum::Json<Program>> {
    own_merchant(&auth, &merchant_id)?;
    auth.require(Role::Manager)?;
    Ok(axum::Json(
        service::put_program(&app.db, &auth.scope, body.value).await?,
    ))
}

/// The merchant's member program with its bonus budget.
#[utoipa::path(get, path = "/v1/member-programs/{merchant_id}", tag = "members", security(("bearer" = [])),
    responses((status = 200, body = Program), (status = 404, body = ErrorBody)))]
async fn get_program(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(merchant_id): Path<String>,
) -> Result<axum::Json<Program>> {
    own_merchant(&auth, &merchant_id)?;
    service::program_for_staff(&app.db, &auth.scope)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            Error::not_found("program_not_found", "This merchant runs no member program.")
        })
}

/// Adds money to the merchant's promotion budget, which pays top-up bonuses (owner): from the
/// bank through the payment provider (default) or from the merchant's available balance. Copies
/// of one keyed request, even racing, charge the bank once; the key with another request is a 409.
#[utoipa::path(post, path = "/v1/member-programs/{merchant_id}/budget-top-ups", tag = "members",
    security(("bearer" = [])), request_body = BudgetTopUp,
    responses((status = 201, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn fund_budget(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    Path(merchant_id): Path<String>,
    body: Json<BudgetTopUp>,
) -> Result<Reply> {
    own_merchant(&auth, &merchant_id)?;
    auth.require(Role::Owner)?;
    service::fund_budget(&app, &auth.scope, body.value, key, &body.body_sha256).await
}

/// Joins a merchant's member program: the caller's card there (`201` when opened now, `200`
/// when they hold it already; a closed card is reopened).
#[utoipa::path(post, path = "/v1/me/cards", tag = "members", security(("bearer" = [])), request_body = JoinProgram,
    responses((status = 201, body = Card), (status = 200, body = Card), (status = 404, body = ErrorBody)))]
async fn join(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    body: Json<JoinProgram>,
) -> Result<Reply> {
    service::join(&app, &p.id, body.value).await
}

/// The caller's member cards.
#[utoipa::path(get, path = "/v1/me/cards", tag = "members", security(("bearer" = [])),
    responses((status = 200, body = List<Card>)))]
async fn my_cards(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    _none: Query<NoParams>,
) -> Result<axum::Json<List<Card>>> {
    Ok(axum::Json(List::whole(
        service::my_cards(&app.db, &p.id).await?,
    )))
}

/// One of the caller's cards: balances, points, tier, the tier's benefits and the next tier,
/// and the latest movements.
#[utoipa::path(get, path = "/v1/me/cards/{id}", tag = "members", security(("bearer" = [])),
    responses((status = 200, body = Card), (status = 404, body = ErrorBody)))]
async fn my_card(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Card>> {
    Ok(axum::Json(service::my_card(&app, &p.id, &id).await?))
}

/// Tops up the card from the caller's wallet; the program's bonus is added to the bonus part.
#[utoipa::path(post, path = "/v1/me/cards/{id}/top-ups", tag = "members", security(("bearer" = [])),
    request_body = CardTopUp,
    responses((status = 201, body = serde_json::Value), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn top_up(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: Json<CardTopUp>,
) -> Result<Reply> {
    service::top_up(&app, &p.id, &id, body.value, key, &body.body_sha256).await
}

/// Closes the card: the unspent paid part goes back to the wallet, the bonus is forfeited.
#[utoipa::path(post, path = "/v1/me/cards/{id}/close", tag = "members", security(("bearer" = [])),
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn close(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
) -> Result<Reply> {
    service::close(&app, &p.id, &id, key).await
}

/// Exchanges the card's points for one coupon of a template its merchant priced in points
/// (积分兑换), through the sequencer in one batch: the coupon is issued as a claim is (stock,
/// per-consumer limit, claim window and audience hold) and the points leave the card with a
/// card movement of kind `exchange`, or nothing changes. `409 points_insufficient`,
/// `409 coupon_sold_out`, `409 coupon_limit_reached`, `409 coupon_not_exchangeable` (a template
/// claimed free or of another merchant), `404 card_not_found` (not the caller's card).
#[utoipa::path(post, path = "/v1/me/cards/{id}/exchanges", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path, description = "crd_ id")),
    request_body = ExchangeInput,
    responses((status = 201, body = PointsExchanged), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn exchange(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: Json<ExchangeInput>,
) -> Result<Reply> {
    service::exchange(&app, &p, &id, body.value, key, &body.body_sha256).await
}

/// The coupons the card's points can be exchanged for, cheapest first: each with its price,
/// whether it is sold out, how many the caller holds and whether they may exchange for one now.
#[utoipa::path(get, path = "/v1/me/cards/{id}/exchange-offers", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path, description = "crd_ id")),
    responses((status = 200, body = List<crate::marketing::model::ExchangeOffer>), (status = 404, body = ErrorBody)))]
async fn exchange_offers(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<List<crate::marketing::model::ExchangeOffer>>> {
    Ok(axum::Json(List::whole(
        service::exchange_offers(&app, &p.id, &id).await?,
    )))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_program, get_program))
        .routes(routes!(fund_budget))
        .routes(routes!(join, my_cards))
        .routes(routes!(my_card))
        .routes(routes!(top_up))
        .routes(routes!(close))
        .routes(routes!(exchange))
        .routes(routes!(exchange_offers))
}
