//! Payments' pages: the consumer pays a store after scanning its printed pay code and gets a
//! receipt; the wallet (balance, held money, entries, top-up from the sandbox bank); the
//! cashier's counter (take a pay code or cash, refund, and hear "payment received" live over
//! server-sent events); the merchant's balance and daily statement (with a CSV download).
//!
//! Amounts are typed in yuan ("25.00") and parsed exactly to fen ([`parse_yuan`]); every amount
//! shown is formatted from fen by the ledger's `Money`. Every movement goes through the same
//! service functions as the JSON API, so the rules (and the tenant checks) are the same.

use super::model::{CreatePayment, CreateRefund, Payment, WalletMove};
use super::service;
use crate::app::AppState;
use crate::error::{Error, Kind};
use crate::http::{Form, Path};
use crate::identity::{Principal, PrincipalKind, Role};
use crate::stores::model::Store;
use crate::web::{OrPage, PageCtx, PageError, T, money, safe_next};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use o2o_ledger::{Currency, Money};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long one live stream lasts before the browser reconnects (bounds every connection).
const LIVE_STREAM_MAX: Duration = Duration::from_secs(30 * 60);
/// Keep-alive comments on a live stream, so proxies and browsers keep it open.
const LIVE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The most wallet entries the wallet page shows.
const WALLET_ENTRIES: i64 = 50;

/// Parses an amount typed in yuan (`25`, `25.5`, `25.00`, optionally after `¥`) to fen,
/// exactly: digits only, at most two decimals, no floating point. Range rules (positive, at
/// most the payment limit) are the service's.
pub fn parse_yuan(raw: &str) -> Result<i64, Error> {
    let bad = || {
        Error::invalid("amount_invalid", "Enter an amount in yuan, such as 25.00.").param("amount")
    };
    let s = raw.trim().trim_start_matches(['¥', '￥']).trim();
    if s.is_empty() || s.len() > 15 {
        return Err(bad());
    }
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || fraction.len() > 2 || !digits(fraction) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction_fen: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| bad())? * 10,
        _ => fraction.parse().map_err(|_| bad())?,
    };
    whole
        .checked_mul(100)
        .and_then(|fen| fen.checked_add(fraction_fen))
        .ok_or_else(bad)
}

/// Signed fen with an explicit sign (wallet entries).
fn shown_signed(amount_minor: i64, currency: &str) -> String {
    if amount_minor > 0 {
        format!("+{}", money(amount_minor, currency))
    } else {
        money(amount_minor, currency)
    }
}

/// An RFC 3339 time as local wall-clock time in `timezone` (default Asia/Shanghai).
fn local_time(rfc3339: &str, timezone: Option<&str>) -> String {
    let tz = timezone
        .and_then(|t| jiff::tz::TimeZone::get(t).ok())
        .or_else(|| jiff::tz::TimeZone::get("Asia/Shanghai").ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// A refused movement as the page says it: the known refusals in the page's language, others
/// in the service's words. Internal failures become an error page.
fn refusal(t: T, e: Error) -> Result<(StatusCode, String), PageError> {
    let key = match e.code.as_ref() {
        "amount_invalid" => Some("pay.error.amount"),
        "amount_too_large" => Some("pay.error.too_large"),
        "insufficient_funds" => Some("pay.error.insufficient"),
        "pay_code_invalid" => Some("counter.error.pay_code"),
        _ => None,
    };
    let (status, said) = crate::web::refusal(t, e)?;
    Ok((status, key.map_or(said, |k| t.s(k).to_owned())))
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The logged-in consumer behind a page (guests must log in before money moves).
fn consumer(ctx: &PageCtx) -> Option<&Principal> {
    ctx.principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
}

/// The staff member behind a console page: the principal, their merchant and role.
fn staff(ctx: &PageCtx) -> Option<(&Principal, String, Role)> {
    let p = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Staff)?;
    Some((p, p.merchant_id.clone()?, p.role?))
}

/// A form's one-time key (a hidden field, fresh on every render): a double tap or a re-sent
/// form replays the first answer instead of moving money twice. Anything malformed is ignored.
fn form_key(raw: &str) -> Option<String> {
    let ok = (16..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("page:{raw}"))
}

/// A fresh key for a form.
pub fn new_form_key() -> String {
    crate::ids::random_token(16)
}

fn form_hash(what: &str) -> String {
    crate::identity::service::sha256_hex(what)
}

fn not_found(t: T) -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        message: t.s("error.not_found").to_owned(),
        t,
    }
}

// ---------------------------------------------------------------------------------------------
// The consumer pays a store
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "payments/pay.html")]
struct PayPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    code: &'a str,
    merchant_name: &'a str,
    merchant_verified: bool,
    store_name: &'a str,
    amount: &'a str,
    key: String,
    error: Option<String>,
    /// The wallet is short: offer a top-up that comes back here.
    offer_top_up: bool,
    /// The consumer's usable coupons on this bill (the best preselected): the form confirms the
    /// amount and the coupon before paying.
    coupons: Option<crate::marketing::pages::CouponPicker>,
}

#[derive(Deserialize)]
struct PayForm {
    csrf: String,
    amount: String,
    #[serde(default)]
    key: String,
    /// `wallet` (default) or the consumer's member card there (`crd_…`).
    #[serde(default)]
    source: String,
    /// The coupon chosen on the confirm form (empty: none).
    #[serde(default)]
    coupon: Option<String>,
    /// Set by the confirm form: the coupon choice has been made.
    #[serde(default)]
    coupon_step: String,
}

/// `POST /q/{code}/pay`: the amount form of a store's printed pay code. Guests log in first and
/// come back to the code; a bad amount or a short wallet re-renders the form and moves nothing.
async fn pay(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(form): Form<PayForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let resolved = match crate::codes::service::resolve(&app.db, &code)
        .await
        .or_page(ctx.t)?
    {
        Ok(r) if r.row.kind == "store_pay" => r,
        _ => return Err(not_found(ctx.t)),
    };
    // The short id resolved, so it is a plain [0-9a-z] segment, safe in a path.
    let landing = format!("/q/{code}");
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={landing}")));
    };
    let row = &resolved.row;
    let render = |error: Option<String>,
                  offer_top_up: bool,
                  status: StatusCode,
                  coupons: Option<crate::marketing::pages::CouponPicker>| {
        ctx.render(&PayPage {
            t: ctx.t,
            logged_in: true,
            path: &landing,
            csrf: &ctx.csrf,
            code: &code,
            merchant_name: &row.merchant_name,
            merchant_verified: row.merchant_verified,
            store_name: &row.store_name,
            amount: form.amount.trim(),
            key: new_form_key(),
            error,
            offer_top_up,
            coupons,
        })
        .map(|r| crate::web::with_status(status, r))
    };
    // Checked against the most a payment may be before any coupon is offered on it.
    let amount = match parse_yuan(&form.amount)
        .and_then(|a| service::parse_amount(a, service::MAX_PAYMENT))
    {
        Ok(a) => a,
        Err(e) => {
            let (status, message) = refusal(ctx.t, e)?;
            return render(Some(message), false, status, None);
        }
    };
    // Coupons: the consumer's usable ones on this bill, the best preselected; the first post
    // (from the landing) shows them to confirm, the confirm form brings the choice.
    let chosen =
        (!form.coupon_step.is_empty()).then(|| form.coupon.as_deref().unwrap_or("").trim());
    let coupons = crate::marketing::pages::picker(
        &app,
        ctx.t,
        &p.id,
        crate::marketing::pages::Bill {
            store_id: &row.store_id,
            channel: "store_pay",
            base: amount,
            due: amount,
            currency: "CNY",
        },
        chosen,
    )
    .await
    .or_page(ctx.t)?;
    if chosen.is_none() && coupons.is_some() {
        return render(None, false, StatusCode::OK, coupons);
    }
    let coupon = chosen.filter(|c| !c.is_empty()).map(str::to_owned);
    let input = CreatePayment {
        qr: Some(code.clone()),
        amount,
        currency: "CNY".to_owned(),
        source: Some(if form.source.starts_with("crd_") {
            form.source.clone()
        } else {
            "wallet".to_owned()
        }),
        coupon: coupon.clone(),
        ..CreatePayment::default()
    };
    let hash = match &coupon {
        Some(c) => form_hash(&format!("page-pay:{code}:{amount}:{}:{c}", form.source)),
        None => form_hash(&format!("page-pay:{code}:{amount}:{}", form.source)),
    };
    match service::create_payment(&app, p, input, form_key(&form.key), &hash).await {
        Ok(reply) => {
            let payment: Payment =
                serde_json::from_str(&reply.body).map_err(|e| PageError::internal(ctx.t, e))?;
            Ok(ctx.redirect(&format!("/me/payments/{}", payment.id)))
        }
        Err(e) => {
            let short = e.code == "insufficient_funds";
            let (status, message) = refusal(ctx.t, e)?;
            render(Some(message), short, status, coupons)
        }
    }
}

#[derive(Template)]
#[template(path = "payments/receipt.html")]
struct ReceiptPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    payment: &'a Payment,
    merchant_name: &'a str,
    store_name: Option<String>,
    amount: String,
    refunded: Option<String>,
    time: String,
    /// What a coupon took off (paid by the merchant's promotion budget).
    coupon_discount: Option<String>,
    /// What the member tier took off: (tier, amount).
    member_discount: Option<(String, String)>,
}

/// `GET /me/payments/{id}`: one of the consumer's payments.
async fn receipt(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&ctx.path))));
    };
    let payment = match service::get_payment(&app.db, p, &id).await {
        Ok(payment) => payment,
        Err(e) if e.kind == Kind::NotFound => return Err(not_found(ctx.t)),
        Err(e) => return Err(PageError::from_error(ctx.t, e)),
    };
    let (merchant_name, store_name) = service::payee_names(&app.db, &payment)
        .await
        .or_page(ctx.t)?;
    let page = ReceiptPage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        amount: money(payment.amount, &payment.currency),
        refunded: (payment.amount_refunded > 0)
            .then(|| money(payment.amount_refunded, &payment.currency)),
        time: local_time(&payment.created_at, None),
        coupon_discount: (payment.discount > 0).then(|| money(payment.discount, &payment.currency)),
        member_discount: payment
            .member_tier
            .clone()
            .filter(|_| payment.member_discount > 0)
            .map(|tier| (tier, money(payment.member_discount, &payment.currency))),
        payment: &payment,
        merchant_name: &merchant_name,
        store_name,
    };
    Ok(no_store(ctx.render(&page)?))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The wallet
// ---------------------------------------------------------------------------------------------

struct ShownEntry {
    kind: String,
    amount: String,
    incoming: bool,
    reference: String,
    time: String,
}

#[derive(Template)]
#[template(path = "payments/wallet.html")]
struct WalletPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    balance: String,
    held: String,
    has_held: bool,
    entries: Vec<ShownEntry>,
    next: &'a str,
    key: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn wallet_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    if consumer(&ctx).is_none() {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&ctx.path))));
    }
    let next = q.next.map(|n| safe_next(Some(&n))).unwrap_or_default();
    render_wallet(&app, &ctx, &next, None, StatusCode::OK).await
}

async fn render_wallet(
    app: &AppState,
    ctx: &PageCtx,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let Some(p) = consumer(ctx) else {
        return Ok(ctx.redirect("/login?next=/me/wallet"));
    };
    let w = service::wallet(
        &app.db,
        &p.id,
        Currency::CNY,
        &crate::http::Page::first(WALLET_ENTRIES),
    )
    .await
    .or_page(ctx.t)?;
    let entries = w
        .entries
        .iter()
        .map(|e| ShownEntry {
            kind: match e.kind.as_str() {
                "top_up" => ctx.t.s("wallet.kind.top_up"),
                "withdrawal" => ctx.t.s("wallet.kind.withdrawal"),
                "top_up_refund" => ctx.t.s("wallet.kind.top_up_refund"),
                "payment" => ctx.t.s("wallet.kind.payment"),
                "refund" => ctx.t.s("wallet.kind.refund"),
                "hold" => ctx.t.s("wallet.kind.hold"),
                "release" => ctx.t.s("wallet.kind.release"),
                _ => ctx.t.s("wallet.kind.other"),
            }
            .to_owned(),
            amount: shown_signed(e.amount, &e.currency),
            incoming: e.amount > 0,
            reference: e.reference.clone(),
            time: local_time(&e.created_at, None),
        })
        .collect();
    let page = WalletPage {
        t: ctx.t,
        logged_in: true,
        path: "/me/wallet",
        csrf: &ctx.csrf,
        balance: money(w.balance, &w.currency),
        held: money(w.held, &w.currency),
        has_held: w.held != 0,
        entries,
        next,
        key: new_form_key(),
        error,
    };
    Ok(crate::web::with_status(
        status,
        no_store(ctx.render(&page)?),
    ))
}

#[derive(Deserialize)]
struct TopUpForm {
    csrf: String,
    amount: String,
    next: Option<String>,
    #[serde(default)]
    key: String,
}

/// `POST /me/wallet/top-ups`: tops the wallet up from the sandbox bank, then goes back to the
/// wallet (or to the pay form that sent the consumer here).
async fn top_up(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<TopUpForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/wallet"));
    };
    let next = form
        .next
        .filter(|n| !n.is_empty())
        .map(|n| safe_next(Some(&n)))
        .unwrap_or_default();
    let result = match parse_yuan(&form.amount) {
        Ok(amount) => {
            let input = WalletMove {
                amount,
                currency: "CNY".to_owned(),
            };
            let hash = form_hash(&format!("page-top-up:{amount}"));
            service::top_up(&app, &p.id, input, form_key(&form.key), &hash).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) if next.is_empty() => Ok(ctx.redirect("/me/wallet")),
        Ok(_) => Ok(ctx.redirect(&next)),
        Err(e) => {
            let (status, message) = refusal(ctx.t, e)?;
            render_wallet(&app, &ctx, &next, Some(message), status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cashier's counter
// ---------------------------------------------------------------------------------------------

struct CounterPayment {
    id: String,
    amount: String,
    refunded: Option<String>,
    refundable: bool,
    method: &'static str,
    status: &'static str,
    time: String,
}

#[derive(Template)]
#[template(path = "payments/counter.html")]
struct CounterPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    stores: &'a [Store],
    store: &'a Store,
    payments: Vec<CounterPayment>,
    error: Option<String>,
    /// The amount typed before an error, to type it again less.
    amount: &'a str,
    /// The forms' one-time key (each refund form adds its payment id).
    key: String,
    /// The pickup number (or order id) just handed over, or why the handover was refused.
    handed_over: Option<String>,
    handover_error: Option<String>,
}

#[derive(Deserialize)]
struct StoreQuery {
    store_id: Option<String>,
    handed_over: Option<String>,
    handover_error: Option<String>,
}

fn require_cashier(t: T, role: Role) -> Result<(), PageError> {
    if role < Role::Cashier {
        return Err(PageError::from_error(
            t,
            Error::forbidden("insufficient_role", "This needs the cashier role."),
        ));
    }
    Ok(())
}

async fn counter_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<StoreQuery>,
) -> Result<Response, PageError> {
    let Some((_, _, role)) = staff(&ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    require_cashier(ctx.t, role)?;
    // The outcome of a handover (orders' counter form) shows above the day's payments.
    let notice = (ctx.flashed(q.handed_over), ctx.flashed(q.handover_error));
    render_counter_full(
        &app,
        &ctx,
        q.store_id.as_deref(),
        None,
        "",
        StatusCode::OK,
        notice,
    )
    .await
}

async fn render_counter(
    app: &AppState,
    ctx: &PageCtx,
    store_id: Option<&str>,
    error: Option<String>,
    amount: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    render_counter_full(app, ctx, store_id, error, amount, status, (None, None)).await
}

async fn render_counter_full(
    app: &AppState,
    ctx: &PageCtx,
    store_id: Option<&str>,
    error: Option<String>,
    amount: &str,
    status: StatusCode,
    (handed_over, handover_error): (Option<String>, Option<String>),
) -> Result<Response, PageError> {
    let Some((p, merchant_id, _)) = staff(ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    let scope = crate::db::MerchantScope::authenticated(merchant_id);
    let stores =
        crate::stores::service::list_own_stores(&app.db, &scope, &crate::http::Page::first(100))
            .await
            .or_page(ctx.t)?
            .data;
    let store = match store_id {
        Some(id) => stores.iter().find(|s| s.id == id).ok_or(not_found(ctx.t))?,
        None => match stores.first() {
            Some(s) => s,
            None => {
                return Err(PageError {
                    status: StatusCode::NOT_FOUND,
                    message: ctx.t.s("console.no_stores").to_owned(),
                    t: ctx.t,
                });
            }
        },
    };
    let payments = service::store_payments_today(&app.db, p, &store.id)
        .await
        .or_page(ctx.t)?
        .into_iter()
        .map(|pm| CounterPayment {
            amount: money(pm.amount, &pm.currency),
            refunded: (pm.amount_refunded > 0).then(|| money(pm.amount_refunded, &pm.currency)),
            refundable: pm.status == "succeeded" && pm.amount_refunded < pm.amount_captured,
            method: match pm.method.as_str() {
                "cash" => "counter.method.cash",
                "pay_code" => "counter.method.pay_code",
                _ => "counter.method.qr",
            },
            status: match pm.status.as_str() {
                "succeeded" if pm.amount_refunded >= pm.amount_captured => "status.refunded",
                "succeeded" if pm.amount_refunded > 0 => "status.partially_refunded",
                "succeeded" => "status.succeeded",
                "requires_capture" => "status.requires_capture",
                "canceled" => "status.canceled",
                _ => "status.failed",
            },
            time: local_time(&pm.created_at, Some(&store.timezone)),
            id: pm.id,
        })
        .collect();
    let path = format!("/console/counter?store_id={}", store.id);
    let page = CounterPage {
        t: ctx.t,
        path: &path,
        csrf: &ctx.csrf,
        stores: &stores,
        store,
        payments,
        error,
        amount,
        key: new_form_key(),
        handed_over,
        handover_error,
    };
    Ok(crate::web::with_status(
        status,
        no_store(ctx.render(&page)?),
    ))
}

#[derive(Deserialize)]
struct CounterPayForm {
    csrf: String,
    store_id: String,
    amount: String,
    #[serde(default)]
    pay_code: String,
    /// `pay_code` (the default: a scanner's Enter submits it) or `cash`.
    #[serde(default)]
    method: String,
    #[serde(default)]
    key: String,
}

/// `POST /console/counter/payments`: takes the consumer's pay code, or records cash.
async fn counter_pay(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<CounterPayForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some((p, _, role)) = staff(&ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    require_cashier(ctx.t, role)?;
    let cash = form.method == "cash";
    let result = match parse_yuan(&form.amount) {
        Ok(amount) => {
            let code: String = form
                .pay_code
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let input = CreatePayment {
                store_id: Some(form.store_id.clone()),
                pay_code: (!cash).then_some(code),
                source: cash.then(|| "cash".to_owned()),
                amount,
                currency: "CNY".to_owned(),
                ..CreatePayment::default()
            };
            let hash = form_hash(&format!(
                "page-counter:{}:{amount}:{}",
                form.store_id,
                input.pay_code.as_deref().unwrap_or("cash")
            ));
            service::create_payment(&app, p, input, form_key(&form.key), &hash).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(ctx.redirect(&format!(
            "/console/counter?store_id={}",
            urlencode(&form.store_id)
        ))),
        Err(e) => {
            let (status, message) = refusal(ctx.t, e)?;
            render_counter(
                &app,
                &ctx,
                Some(&form.store_id),
                Some(message),
                form.amount.trim(),
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct CounterRefundForm {
    csrf: String,
    store_id: String,
    payment: String,
    /// Empty: all that is left.
    #[serde(default)]
    amount: String,
    #[serde(default)]
    key: String,
}

/// `POST /console/counter/refunds`: refunds a payment, fully or in part.
async fn counter_refund(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<CounterRefundForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some((p, _, role)) = staff(&ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    require_cashier(ctx.t, role)?;
    let amount = match form.amount.trim() {
        "" => Ok(None),
        typed => parse_yuan(typed).map(Some),
    };
    let result = match amount {
        Ok(amount) => {
            let hash = form_hash(&format!("page-refund:{}:{amount:?}", form.payment));
            let input = CreateRefund {
                payment: form.payment.clone(),
                amount,
                reason: None,
            };
            service::refund(&app, p, input, form_key(&form.key), &hash).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(ctx.redirect(&format!(
            "/console/counter?store_id={}",
            urlencode(&form.store_id)
        ))),
        Err(e) => {
            let (status, message) = refusal(ctx.t, e)?;
            render_counter(&app, &ctx, Some(&form.store_id), Some(message), "", status).await
        }
    }
}

/// What the counter's script announces: `text` to show, `speech` to say.
#[derive(serde::Serialize)]
struct Announcement {
    payment_id: String,
    amount: i64,
    currency: String,
    text: String,
    speech: String,
}

fn announcement(t: T, event: &crate::events::Published) -> Option<Announcement> {
    let amount = event.field("amount")?.as_i64()?;
    let currency = event.field_str("currency")?.to_owned();
    let payment_id = event.field_str("id").unwrap_or_default().to_owned();
    let major = Currency::parse(&currency)
        .map(|c| Money::new(amount, c).format_major())
        .unwrap_or_else(|_| amount.to_string());
    Some(Announcement {
        text: format!("{} {}", t.s("counter.received"), money(amount, &currency)),
        speech: format!(
            "{}{}{}",
            t.s("counter.received_speech"),
            major,
            t.s("counter.speech_unit")
        ),
        payment_id,
        amount,
        currency,
    })
}

/// `GET /console/counter/events?store_id=`: the store's succeeded payments as they commit, as
/// server-sent events (`event: payment`), with keep-alives. A stream ends on shutdown and after
/// [`LIVE_STREAM_MAX`] (the browser reconnects), so none outlives its use.
async fn counter_events(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<StoreQuery>,
) -> Result<Response, PageError> {
    let Some((_, merchant_id, role)) = staff(&ctx) else {
        return Err(PageError::from_error(
            ctx.t,
            Error::unauthenticated("unauthenticated", "Log in to the console."),
        ));
    };
    require_cashier(ctx.t, role)?;
    let store_id = q.store_id.unwrap_or_default();
    if crate::stores::service::own_store_timezone(&app.db, &merchant_id, &store_id)
        .await
        .or_page(ctx.t)?
        .is_none()
    {
        return Err(not_found(ctx.t));
    }
    let t = ctx.t;
    let events = app.bus.subscribe();
    let closed = app.bus.closed();
    let end: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(async move {
            tokio::select! {
                _ = closed => {}
                _ = tokio::time::sleep(LIVE_STREAM_MAX) => {}
            }
        });
    let stream = futures::stream::unfold((events, end), move |(mut events, mut end)| {
        let merchant_id = merchant_id.clone();
        let store_id = store_id.clone();
        async move {
            loop {
                tokio::select! {
                    _ = &mut end => return None,
                    received = events.recv() => match received {
                        Ok(e) if e.kind == "payment.succeeded"
                            && e.merchant_id == merchant_id
                            && e.store_id.as_deref() == Some(store_id.as_str()) =>
                        {
                            let Some(a) = announcement(t, &e) else { continue };
                            let Ok(event) = Event::default().event("payment").json_data(&a) else {
                                continue;
                            };
                            return Some((Ok::<_, Infallible>(event), (events, end)));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        }
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(LIVE_KEEP_ALIVE))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

const COUNTER_JS: &str = include_str!("../../assets/counter.js");

async fn counter_js() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    (headers, COUNTER_JS).into_response()
}

// ---------------------------------------------------------------------------------------------
// The merchant's balance and statements
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "payments/balance.html")]
struct BalancePage<'a> {
    t: T,
    path: &'a str,
    available: String,
    pending: String,
    cash: String,
    date: &'a str,
    gross: String,
    refunds: String,
    fees: String,
    net: String,
    count: i64,
    refund_count: i64,
    statement_cash: String,
    error: Option<String>,
    /// The zone the merchant's days are counted in, as set (empty: its first store's), and
    /// whether the viewer (an owner) may change it.
    timezone: String,
    may_set_timezone: bool,
    csrf: &'a str,
    timezone_error: Option<String>,
}

#[derive(Deserialize)]
struct DateQuery {
    date: Option<String>,
    /// A refused time zone's message (after the form below redirects back).
    timezone_error: Option<String>,
}

#[derive(Deserialize)]
struct TimezoneForm {
    csrf: String,
    #[serde(default)]
    timezone: String,
}

/// `POST /console/balance/timezone`: the owner sets (or, left empty, clears) the time zone the
/// merchant's days are counted in; back to the balance page, with the refusal if any.
async fn set_timezone(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<TimezoneForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    if c.role < Role::Owner {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden(
                "insufficient_role",
                "Only the owner sets the merchant's time zone.",
            ),
        ));
    }
    let zone = form.timezone.trim();
    let zone = (!zone.is_empty()).then_some(zone);
    let merchant_id = c.scope.merchant_id().to_owned();
    match crate::merchants::service::set_timezone(&app.db, &c.scope, &merchant_id, zone).await {
        Ok(_) => Ok(ctx.redirect("/console/balance")),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => Ok(ctx.redirect(&format!(
            "/console/balance?timezone_error={}",
            urlencode(&ctx.flash(&crate::web::said(ctx.t, &e)))
        ))),
    }
}

fn require_manager(t: T, role: Role) -> Result<(), PageError> {
    if role < Role::Manager {
        return Err(PageError::from_error(
            t,
            Error::forbidden("insufficient_role", "Managers and owners see balances."),
        ));
    }
    Ok(())
}

/// `GET /console/balance?date=`: the balances and one day's statement.
async fn balance_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<DateQuery>,
) -> Result<Response, PageError> {
    let Some((_, merchant_id, role)) = staff(&ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    require_manager(ctx.t, role)?;
    let set = crate::merchants::service::public_merchant(&app.db, &merchant_id)
        .await
        .or_page(ctx.t)?
        .and_then(|m| m.timezone);
    // The zone the merchant's days are counted in: the one set, else (one more read) its
    // first store's.
    let zone = match &set {
        Some(z) => Some(z.clone()),
        None => crate::stores::service::merchant_timezone(&app.db, &merchant_id)
            .await
            .or_page(ctx.t)?,
    };
    let timezone = set.unwrap_or_default();
    // Today as the merchant counts its days.
    let today = service::business_day(zone.as_deref(), crate::db::now_us());
    let asked = q.date.filter(|d| !d.is_empty());
    let (date, statement, error) = match asked {
        Some(d) => match service::statement(&app.db, &merchant_id, &d, Currency::CNY).await {
            Ok(s) => (d, s, None),
            Err(e) => {
                let (_, message) = refusal(ctx.t, e)?;
                let s = service::statement(&app.db, &merchant_id, &today, Currency::CNY)
                    .await
                    .or_page(ctx.t)?;
                (today.clone(), s, Some(message))
            }
        },
        None => {
            let s = service::statement(&app.db, &merchant_id, &today, Currency::CNY)
                .await
                .or_page(ctx.t)?;
            (today.clone(), s, None)
        }
    };
    let b = service::merchant_balance(&app.db, &merchant_id, Currency::CNY)
        .await
        .or_page(ctx.t)?;
    let c = &b.currency;
    let page = BalancePage {
        t: ctx.t,
        path: &ctx.path,
        available: money(b.available, c),
        pending: money(b.pending, c),
        cash: money(b.cash, c),
        date: &date,
        gross: money(statement.gross, c),
        refunds: money(statement.refunds, c),
        fees: money(statement.fees, c),
        net: money(statement.net, c),
        count: statement.count,
        refund_count: statement.refund_count,
        statement_cash: money(statement.cash, c),
        error,
        timezone,
        may_set_timezone: role >= Role::Owner,
        csrf: &ctx.csrf,
        timezone_error: ctx.flashed(q.timezone_error),
    };
    Ok(no_store(ctx.render(&page)?))
}

/// `GET /console/balance/statements/{date}.csv`: the day's statement as CSV, with the page
/// session (the same body as the JSON API's CSV).
async fn statement_csv(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let Some((_, merchant_id, role)) = staff(&ctx) else {
        return Ok(ctx.redirect("/console/login"));
    };
    require_manager(ctx.t, role)?;
    let Some(day) = file.strip_suffix(".csv") else {
        return Err(not_found(ctx.t));
    };
    let s = service::statement(&app.db, &merchant_id, day, Currency::CNY)
        .await
        .or_page(ctx.t)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{}.csv\"", s.date),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        service::statement_csv(&s),
    )
        .into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/q/{code}/pay", post(pay))
        .route("/me/payments/{id}", get(receipt))
        .route("/me/wallet", get(wallet_page))
        .route("/me/wallet/top-ups", post(top_up))
        .route("/console/counter", get(counter_page))
        .route("/console/counter/payments", post(counter_pay))
        .route("/console/counter/refunds", post(counter_refund))
        .route("/console/counter/events", get(counter_events))
        .route("/console/balance", get(balance_page))
        .route("/console/balance/statements/{file}", get(statement_csv))
        .route("/console/balance/timezone", post(set_timezone))
        .route("/assets/counter.js", get(counter_js))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_yuan_parse_exactly_to_fen() {
        assert_eq!(parse_yuan("25.00").unwrap(), 2500);
        assert_eq!(parse_yuan(" 25 ").unwrap(), 2500);
        assert_eq!(parse_yuan("25.5").unwrap(), 2550);
        assert_eq!(parse_yuan("0.01").unwrap(), 1);
        assert_eq!(parse_yuan("¥19.99").unwrap(), 1999);
        assert_eq!(parse_yuan("0").unwrap(), 0);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            " ",
            "abc",
            "25.001",
            "-5",
            "+5",
            ".5",
            "25,00",
            "1e3",
            "25.0.0",
            "２５",
            "999999999999999999999",
            "NaN",
        ] {
            assert!(parse_yuan(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn money_shows_from_fen() {
        assert_eq!(money(2500, "CNY"), "¥25.00");
        assert_eq!(shown_signed(2500, "CNY"), "+¥25.00");
        assert_eq!(shown_signed(-5, "CNY"), "-¥0.05");
    }
}
