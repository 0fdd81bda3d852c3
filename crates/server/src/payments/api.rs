//! Payments' JSON routes: wallet, payments, refunds, merchant balance and statements, ledger
//! verification, and the payment provider's notifications.

use super::model::*;
use super::provider::SignedNotification;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::{
    Auth, ConsumerAuth, Idem, Json, List, MerchantAuth, OperatorAuth, OptionalJson, PageParams,
    Path, Query, Reply, error::ErrorBody,
};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Tops up the caller's wallet from the sandbox bank (or the configured provider). Copies of one
/// keyed request, even racing, charge the bank once; the key with another request is a 409. A
/// 503 says the bank has not answered yet: the top-up completes once it does (see the wallet).
#[utoipa::path(post, path = "/v1/wallet/top-ups", tag = "wallet", security(("bearer" = [])), request_body = WalletMove,
    responses((status = 201, body = WalletMoved), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn top_up(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    body: Json<WalletMove>,
) -> Result<Reply> {
    service::top_up(&app, &p.id, body.value, key, &body.body_sha256).await
}

/// Withdraws from the caller's wallet back to their bank. The money is held in the wallet before
/// the bank is asked to pay it out: more than the wallet holds is a 402 and nothing is paid out.
/// Copies of one keyed request, even racing, pay out once; the key with another request is a
/// 409. A 503 says the bank has not answered yet: the money stays held until it does, and is
/// then paid out or released (see the wallet).
#[utoipa::path(post, path = "/v1/wallet/withdrawals", tag = "wallet", security(("bearer" = [])), request_body = WalletMove,
    responses((status = 201, body = WalletMoved), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn withdraw(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    body: Json<WalletMove>,
) -> Result<Reply> {
    service::withdraw(&app, &p.id, body.value, key, &body.body_sha256).await
}

/// Refunds one of the caller's top-ups back to where it came from (the bank refunds its charge),
/// `amount` of it or, without a body, all that is left of it. The money is held in the wallet
/// before the bank is asked: more than the wallet holds is a 402 `insufficient_funds`, more than
/// is left of the top-up a 402 `refund_exceeds_top_up`, and the bank is not asked. Copies of one
/// keyed request refund once. A 503 says the bank has not answered yet: the money stays held
/// until it does.
#[utoipa::path(post, path = "/v1/wallet/top-ups/{id}/refund", tag = "wallet", security(("bearer" = [])),
    request_body = Option<TopUpRefund>,
    responses((status = 201, body = WalletMoved), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn refund_top_up(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<TopUpRefund>,
) -> Result<Reply> {
    service::refund_top_up(&app, &p.id, &id, body.value, key, &body.body_sha256).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WalletParams {
    /// Default CNY.
    pub currency: Option<String>,
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

/// The caller's wallet: what can be spent now, what is held, and the latest entries.
#[utoipa::path(get, path = "/v1/wallet", tag = "wallet", security(("bearer" = [])), params(WalletParams),
    responses((status = 200, body = Wallet)))]
async fn wallet(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(q): Query<WalletParams>,
) -> Result<axum::Json<Wallet>> {
    let currency = service::parse_currency(q.currency.as_deref().unwrap_or("CNY"))?;
    let page = PageParams {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .parse()?;
    Ok(axum::Json(
        service::wallet(&app.db, &p.id, currency, &page).await?,
    ))
}

/// Takes a payment: a consumer who scanned a store's printed code (`qr`), a cashier who scanned
/// the consumer's pay code (`store_id`, `pay_code`), or a cashier recording cash
/// (`store_id`, `source: "cash"`).
#[utoipa::path(post, path = "/v1/payments", tag = "payments", security(("bearer" = [])), request_body = CreatePayment,
    responses((status = 201, body = Payment), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_payment(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    body: Json<CreatePayment>,
) -> Result<Reply> {
    service::create_payment(&app, &p, body.value, key, &body.body_sha256).await
}

/// The caller's payments, newest first: a consumer's own, or those made to the merchant.
#[utoipa::path(get, path = "/v1/payments", tag = "payments", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = List<Payment>)))]
async fn list_payments(
    State(app): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<List<Payment>>> {
    let page = q.parse()?;
    Ok(axum::Json(
        service::list_payments(&app.db, &p, &page).await?,
    ))
}

/// One payment (the consumer who paid or the merchant paid).
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)))]
async fn get_payment(
    State(app): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Payment>> {
    Ok(axum::Json(service::get_payment(&app.db, &p, &id).await?))
}

/// Captures a held payment (at most the amount held; the rest is released).
#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments", security(("bearer" = [])),
    request_body = Option<CapturePayment>,
    responses((status = 200, body = Payment), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn capture(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<CapturePayment>,
) -> Result<Reply> {
    service::capture(
        &app,
        &auth.principal,
        &id,
        body.value,
        key,
        &body.body_sha256,
    )
    .await
}

/// Cancels a held payment: the money is released at once.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments", security(("bearer" = [])),
    request_body = Option<CancelPayment>,
    responses((status = 200, body = Payment), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<CancelPayment>,
) -> Result<Reply> {
    service::cancel(&app, &auth.principal, &id, key, &body.body_sha256).await
}

/// Refunds a payment, fully or in part, back to where the money came from.
#[utoipa::path(post, path = "/v1/refunds", tag = "payments", security(("bearer" = [])), request_body = CreateRefund,
    responses((status = 201, body = Refund), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_refund(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateRefund>,
) -> Result<Reply> {
    service::refund(&app, &auth.principal, body.value, key, &body.body_sha256).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CurrencyParam {
    /// Default CNY.
    pub currency: Option<String>,
}

fn own_merchant(auth: &MerchantAuth, id: &str) -> Result<()> {
    if auth.scope.owns(id) {
        Ok(())
    } else {
        Err(Error::not_found("merchant_not_found", "No such merchant."))
    }
}

/// The merchant's balances: available, pending settlement, and cash taken at the counter.
#[utoipa::path(get, path = "/v1/merchants/{id}/balance", tag = "payments", security(("bearer" = [])), params(CurrencyParam),
    responses((status = 200, body = MerchantBalance), (status = 404, body = ErrorBody)))]
async fn balance(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(q): Query<CurrencyParam>,
) -> Result<axum::Json<MerchantBalance>> {
    own_merchant(&auth, &id)?;
    let currency = service::parse_currency(q.currency.as_deref().unwrap_or("CNY"))?;
    Ok(axum::Json(
        service::merchant_balance(&app.db, &id, currency).await?,
    ))
}

/// A day's statement (the business day in each store's time zone); `{date}.csv` for CSV.
#[utoipa::path(get, path = "/v1/merchants/{id}/statements/{date}", tag = "payments", security(("bearer" = [])),
    params(CurrencyParam), responses((status = 200, body = Statement), (status = 400, body = ErrorBody)))]
async fn statement(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path((id, date)): Path<(String, String)>,
    Query(q): Query<CurrencyParam>,
) -> Result<Response> {
    own_merchant(&auth, &id)?;
    auth.require(crate::identity::Role::Manager)?;
    let currency = service::parse_currency(q.currency.as_deref().unwrap_or("CNY"))?;
    let (day, csv) = match date.strip_suffix(".csv") {
        Some(d) => (d, true),
        None => (date.as_str(), false),
    };
    let s = service::statement(&app.db, &id, day, currency).await?;
    if csv {
        let body = service::statement_csv(&s);
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"statement-{day}.csv\""),
                ),
            ],
            body,
        )
            .into_response())
    } else {
        Ok(axum::Json(s).into_response())
    }
}

/// Verifies the whole ledger: every currency sums to zero, no flagged account is below zero,
/// every balance equals the sum of its transfers, every post or void matches its hold.
#[utoipa::path(get, path = "/v1/admin/ledger/verify", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = serde_json::Value)))]
async fn verify_ledger(
    State(app): State<AppState>,
    _op: OperatorAuth,
) -> Result<axum::Json<o2o_ledger::Verification>> {
    Ok(axum::Json(service::verify(&app.db).await?))
}

/// The payment provider's asynchronous notification (the sandbox bank signs like a real
/// provider: `webhook-id`, `webhook-timestamp`, `webhook-signature` over `{id}.{ts}.{body}`).
#[utoipa::path(post, path = "/v1/providers/sandbox/notifications", tag = "wallet",
    request_body(content = String, content_type = "application/json"),
    responses((status = 200, body = WalletMoved), (status = 400, body = ErrorBody)))]
async fn provider_notification(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Reply> {
    let body = body.map_err(|rejection| {
        crate::http::json::unread_body(
            &rejection,
            &format!(
                "The body is larger than {} bytes.",
                crate::http::json::MAX_JSON_BODY_BYTES
            ),
        )
    })?;
    let body = String::from_utf8(Vec::from(body))
        .map_err(|_| Error::invalid("notification_invalid", "The body is not UTF-8 text."))?;
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid("notification_invalid", format!("Missing {name}.")))
    };
    let n = SignedNotification {
        id: h("webhook-id")?,
        timestamp: h("webhook-timestamp")?,
        signature: h("webhook-signature")?,
        body,
    };
    service::confirm(&app, &n, None).await
}

/// Settles a merchant (operators): its pending balance becomes available for payout.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/settlements", tag = "admin", security(("bearer" = [])),
    params(CurrencyParam), responses((status = 201, body = serde_json::Value), (status = 404, body = ErrorBody)))]
async fn settle(
    State(app): State<AppState>,
    _op: OperatorAuth,
    Path(id): Path<String>,
    Query(q): Query<CurrencyParam>,
) -> Result<Reply> {
    let currency = service::parse_currency(q.currency.as_deref().unwrap_or("CNY"))?;
    service::settle(&app, &id, currency).await
}

/// Pays out part of the merchant's available balance to its bank (owner). The money is held
/// before the bank is asked: more than is available (less what payouts in flight hold) is a 402.
/// Copies of one keyed request pay out once; the key with another request is a 409. A 503 says
/// the bank has not answered yet: the money stays held until it does.
#[utoipa::path(post, path = "/v1/merchants/{id}/payouts", tag = "payments", security(("bearer" = [])),
    request_body = WalletMove, responses((status = 201, body = serde_json::Value), (status = 402, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn payout(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: Json<WalletMove>,
) -> Result<Reply> {
    service::payout(
        &app,
        &auth.principal,
        &id,
        body.value,
        key,
        &body.body_sha256,
    )
    .await
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(top_up))
        .routes(routes!(withdraw))
        .routes(routes!(refund_top_up))
        .routes(routes!(wallet))
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(capture))
        .routes(routes!(cancel))
        .routes(routes!(create_refund))
        .routes(routes!(balance))
        .routes(routes!(statement))
        .routes(routes!(verify_ledger))
        .routes(routes!(settle))
        .routes(routes!(payout))
        .routes(routes!(provider_notification))
}
