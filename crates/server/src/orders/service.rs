//! Orders' rules: who may order what, where and when; pricing on the server from the store's
//! menu (the client's prices are never read); the delivery area, fee, minimum and promise; and
//! the commands handed to the sequencer, which owns every change of an order.

use super::engine::{Actor, NewLine, OrderOp};
use super::model::*;
use super::store;
use crate::app::AppState;
use crate::codes::service::KeptToken;
use crate::db::{now_us, rfc3339};
use crate::error::{Error, Result};
use crate::http::{List, Page, Reply};
use crate::identity::{Principal, PrincipalKind, Role};
use crate::ids::{OrderId, PaymentId};
use crate::payments::engine::{IdemKey, NewPayment, Op};
use crate::payments::service::{business_day, parse_currency};
use o2o_codes::token::TokenKind;
use o2o_ledger::Money;
use std::collections::HashMap;

/// Items per request at most.
pub const MAX_ITEMS_PER_REQUEST: usize = 50;
/// Units of one line at most.
pub const MAX_QUANTITY: i64 = 99;
/// How far ahead a pickup can be ordered.
const PICKUP_AHEAD_MAX_US: i64 = 7 * 24 * 3_600 * 1_000_000;
/// A rider's average speed through a city, for delivery promises (metres per minute).
const RIDER_M_PER_MIN: f64 = 250.0;
/// How long a pickup code and an exit pass stay valid.
const PICKUP_CODE_TTL_S: i64 = 24 * 3_600;
const EXIT_PASS_TTL_S: i64 = 30 * 60;

fn order_not_found() -> Error {
    Error::not_found("order_not_found", "No such order.").param("id")
}

fn store_not_found() -> Error {
    Error::not_found("store_not_found", "No such store.").param("store_id")
}

fn idem(principal: &Principal, key: Option<String>, hash: &str) -> Option<IdemKey> {
    key.map(|key| IdemKey {
        scope: principal.id.clone(),
        key,
        hash: hash.to_owned(),
    })
}

fn actor_of(principal: &Principal) -> Result<Actor> {
    match (principal.kind, &principal.merchant_id, principal.role) {
        (PrincipalKind::Consumer, _, _) => Ok(Actor::Consumer(principal.id.clone())),
        (PrincipalKind::Staff | PrincipalKind::ApiKey, Some(m), Some(_)) => Ok(Actor::Staff {
            merchant_id: m.clone(),
            id: principal.id.clone(),
        }),
        _ => Err(Error::forbidden(
            "orders_forbidden",
            "Only consumers and a merchant's staff can order.",
        )),
    }
}

fn optional_text(v: Option<String>, max: usize, param: &'static str) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => {
            let s = s.trim().to_owned();
            if s.chars().count() > max || s.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "text_invalid",
                    format!("{param} must be at most {max} characters of text."),
                )
                .param(param));
            }
            Ok(Some(s))
        }
    }
}

/// Prices the items at a store from its menu: the store's price plus the chosen options.
async fn price(
    app: &AppState,
    store_id: &str,
    items: &[ItemInput],
) -> Result<(Vec<NewLine>, Option<String>)> {
    if items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(Error::invalid(
            "too_many_items",
            format!("At most {MAX_ITEMS_PER_REQUEST} items per request."),
        )
        .param("items"));
    }
    let menu = crate::catalog::service::menu(app, store_id).await?;
    let mut by_id = HashMap::new();
    let mut by_barcode = HashMap::new();
    for section in &menu.menu.sections {
        for item in &section.products {
            by_id.insert(item.id.as_str(), item);
            if let Some(b) = &item.barcode {
                by_barcode.insert(b.as_str(), item);
            }
        }
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut currency: Option<String> = None;
    for (i, input) in items.iter().enumerate() {
        let at = |field: &str| format!("items[{i}].{field}");
        let item = match (&input.product_id, &input.barcode) {
            (Some(id), None) => by_id.get(id.as_str()).copied().ok_or_else(|| {
                Error::not_found("product_not_found", "No such product at this store.")
                    .param(at("product_id"))
            })?,
            (None, Some(code)) => {
                let code = crate::catalog::model::Barcode::parse(code)
                    .map_err(|e| e.param(at("barcode")))?;
                by_barcode.get(code.as_str()).copied().ok_or_else(|| {
                    Error::not_found("product_not_found", "No product has this barcode here.")
                        .param(at("barcode"))
                })?
            }
            _ => {
                return Err(Error::invalid(
                    "product_required",
                    "Give each item a product_id or a barcode (one of them).",
                )
                .param(at("product_id")));
            }
        };
        let quantity = input.quantity.unwrap_or(1);
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(Error::invalid(
                "quantity_out_of_range",
                format!("quantity must be between 1 and {MAX_QUANTITY}."),
            )
            .param(at("quantity"))
            .arg("max", MAX_QUANTITY));
        }
        if item.sold_out {
            return Err(
                super::engine::sold_out(&item.name_zh, &item.name_en, "is sold out here.")
                    .param(at("product_id")),
            );
        }
        let c = parse_currency(&item.currency)?;
        if currency.as_deref().is_some_and(|cur| cur != item.currency) {
            return Err(Error::invalid(
                "currency_mismatch",
                "Every item of an order must be in one currency.",
            )
            .param(at("product_id")));
        }
        currency = Some(item.currency.clone());
        let unit = crate::catalog::model::price_with_options(
            Money::new(item.price, c),
            &item.option_groups,
            &input.options,
        )
        .map_err(|mut e| {
            let inner = e.param.take().unwrap_or_else(|| "options".into());
            e.param(format!("items[{i}].{inner}"))
        })?;
        lines.push(NewLine {
            product_id: item.id.clone(),
            name_zh: item.name_zh.clone(),
            name_en: item.name_en.clone(),
            options: input.options.clone(),
            unit_price: unit.amount_minor(),
            quantity,
        });
    }
    Ok((lines, currency))
}

/// What items would come to at a store before discounts (the menu's prices with the chosen
/// options): the pickup page picks the best coupon for it.
pub async fn subtotal(app: &AppState, store_id: &str, items: &[ItemInput]) -> Result<i64> {
    let (lines, _) = price(app, store_id, items).await?;
    lines
        .iter()
        .try_fold(0_i64, |sum, l| {
            l.unit_price
                .checked_mul(l.quantity)
                .and_then(|v| sum.checked_add(v))
        })
        .ok_or_else(|| {
            Error::invalid("amount_too_large", "This order comes to too much.").param("items")
        })
}

fn blank(
    merchant_id: &str,
    store_id: &str,
    channel: Channel,
    status: Status,
    currency: &str,
    user_id: Option<String>,
    discounts: Vec<Discount>,
) -> OrderData {
    let now = now_us();
    OrderData {
        id: OrderId::generate().as_str().to_owned(),
        merchant_id: merchant_id.to_owned(),
        store_id: store_id.to_owned(),
        channel,
        status,
        table_id: None,
        active_table: None,
        user_id,
        currency: currency.to_owned(),
        lines: Vec::new(),
        discounts,
        subtotal: 0,
        discount_total: 0,
        delivery_fee: 0,
        total: 0,
        amount_paid: 0,
        amount_refunded: 0,
        payments: Vec::new(),
        delivery: None,
        pickup_at: None,
        promised_at: None,
        pickup_number: None,
        note: None,
        reserve_until: None,
        cancel_reason: None,
        placed_at: None,
        paid_at: None,
        ready_at: None,
        completed_at: None,
        canceled_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// The discounts a new order gets (the marketing capability's coupons plug in here).
fn discounts_for(app: &AppState) -> Vec<Discount> {
    app.config
        .order_test_discount
        .filter(|d| *d > 0)
        .map(|amount| Discount {
            code: "test".into(),
            label: "Test discount".into(),
            amount,
        })
        .into_iter()
        .collect()
}

struct Where {
    store: crate::stores::model::Store,
    table_id: Option<String>,
    fee_bps: i64,
}

/// The store (and table) an order is for, checked: it exists, its merchant takes payments.
async fn place_of(app: &AppState, principal: &Principal, input: &CreateOrder) -> Result<Where> {
    let (store_id, table_id) = match (&input.qr, &input.store_id, &input.table_id) {
        (Some(qr), _, _) => {
            if qr.len() > 512 {
                return Err(Error::invalid("qr_invalid", "qr is too long.").param("qr"));
            }
            let segment = crate::payments::service::qr_segment(qr);
            let resolved = crate::codes::service::resolve(&app.db, segment)
                .await?
                .map_err(|f| f.error().param("qr"))?;
            if resolved.row.kind != "table" {
                return Err(
                    Error::invalid("qr_not_a_table", "This code is not a table's code.")
                        .param("qr"),
                );
            }
            // The resolution carries the store and its merchant's terms: no further reads.
            let row = resolved.row;
            if principal.kind != PrincipalKind::Consumer
                && principal.merchant_id.as_deref() != Some(row.merchant_id.as_str())
            {
                return Err(store_not_found());
            }
            if !row.merchant_takes_payments() {
                return Err(not_trading());
            }
            return Ok(Where {
                store: resolved.store,
                table_id: row.table_id,
                fee_bps: row.merchant_fee_bps,
            });
        }
        (None, Some(store_id), table) => {
            if let Some(t) = table {
                let scope = match principal.kind {
                    PrincipalKind::Staff | PrincipalKind::ApiKey => {
                        principal.merchant_id.clone().unwrap_or_default()
                    }
                    _ => {
                        return Err(Error::invalid(
                            "qr_required",
                            "Scan the table's code: send qr with the scanned text.",
                        )
                        .param("qr"));
                    }
                };
                if crate::stores::service::table_label(&app.db, &scope, store_id, t)
                    .await?
                    .is_none()
                {
                    return Err(
                        Error::not_found("table_not_found", "No such table.").param("table_id")
                    );
                }
            }
            (store_id.clone(), table.clone())
        }
        (None, None, _) => {
            return Err(Error::invalid("store_id_required", "Name the store.").param("store_id"));
        }
    };
    let store = crate::stores::service::find_store(&app.db, &store_id)
        .await?
        .ok_or_else(store_not_found)?;
    if let Some(m) = &principal.merchant_id
        && principal.kind != PrincipalKind::Consumer
        && m != &store.merchant_id
    {
        return Err(store_not_found());
    }
    let terms = crate::merchants::service::payment_terms(&app.db, &store.merchant_id)
        .await?
        .ok_or_else(store_not_found)?;
    if !terms.takes_payments() {
        return Err(not_trading());
    }
    Ok(Where {
        store,
        table_id,
        fee_bps: terms.fee_bps,
    })
}

fn not_trading() -> Error {
    Error::forbidden(
        "merchant_not_trading",
        "This merchant does not take orders.",
    )
}

fn closed() -> Error {
    Error::conflict(
        "store_closed",
        "The store is closed now; see its opening hours.",
    )
}

/// A payment for an order, checked by the engine against what is due (amount 0: all of it).
#[allow(clippy::too_many_arguments)]
fn order_payment(
    principal: &Principal,
    order_id: &str,
    merchant_id: &str,
    store: &crate::stores::model::Store,
    fee_bps: i64,
    currency: o2o_ledger::Currency,
    pay: &PayInput,
) -> Result<NewPayment> {
    let staff = principal.kind != PrincipalKind::Consumer;
    let source = match pay.source.as_deref() {
        None | Some("wallet") if !staff => "wallet".to_owned(),
        Some(card) if !staff && card.starts_with("crd_") && card.len() <= 64 => card.to_owned(),
        Some("cash") if staff => {
            if principal.role.is_none_or(|r| r < Role::Cashier) {
                return Err(Error::forbidden(
                    "insufficient_role",
                    "This needs the cashier role.",
                ));
            }
            "cash".to_owned()
        }
        _ if staff => {
            return Err(Error::invalid(
                "source_invalid",
                "At the counter, record cash (source: cash); the consumer pays from the phone.",
            )
            .param("payment.source"));
        }
        _ => {
            return Err(Error::invalid(
                "source_invalid",
                "source must be wallet or a member card (crd_…).",
            )
            .param("payment.source"));
        }
    };
    let amount = match pay.amount {
        None => 0,
        Some(a) => crate::payments::service::parse_amount(a, crate::payments::service::MAX_PAYMENT)
            .map_err(|e| e.param("amount"))?,
    };
    let now = now_us();
    Ok(NewPayment {
        id: PaymentId::generate().as_str().to_owned(),
        merchant_id: merchant_id.to_owned(),
        store_id: Some(store.id.clone()),
        user_id: (!staff).then(|| principal.id.clone()),
        method: if source == "cash" { "cash" } else { "order" },
        source: Some(source),
        pay_code_hash: None,
        qr_id: None,
        order_id: Some(order_id.to_owned()),
        description: None,
        amount,
        currency,
        hold_until: None,
        fee_bps,
        business_day: business_day(Some(&store.timezone), now),
        staff_id: staff.then(|| principal.id.clone()),
        coupon_id: match &pay.coupon {
            None => None,
            Some(_) if staff => {
                return Err(Error::invalid(
                    "coupon_not_allowed",
                    "A coupon is used by the consumer who holds it.",
                )
                .param("payment.coupon"));
            }
            Some(c) => Some(crate::marketing::service::parse_coupon_id(c)?),
        },
        coupon_holder: None,
    })
}

fn six_digits() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// A delivery address checked against a store: within its radius, with the distance filled in
/// and the time it is promised for.
struct DeliveryTerms {
    address: DeliveryAddress,
    distance_m: u32,
    minutes: i64,
    promised_at: i64,
}

/// Checks where a delivery goes: a real address within the store's delivery radius. The
/// promise is the store's fixed minutes, or its preparation time plus the ride at a rider's
/// average speed.
fn delivery_terms(
    store: &crate::stores::model::Store,
    settings: &OrderSettings,
    mut addr: DeliveryAddress,
    now: i64,
) -> Result<DeliveryTerms> {
    let text =
        optional_text(Some(addr.address.clone()), 200, "delivery.address")?.ok_or_else(|| {
            Error::invalid("address_required", "Give the delivery address.")
                .param("delivery.address")
        })?;
    addr.address = text;
    addr.contact_phone = optional_text(addr.contact_phone, 32, "delivery.contact_phone")?;
    // A number a rider can call: digits (at least five), with the usual +, spaces, dashes and
    // brackets between them.
    if let Some(phone) = &addr.contact_phone
        && (phone.chars().filter(char::is_ascii_digit).count() < 5
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')')))
    {
        return Err(Error::invalid(
            "contact_phone_invalid",
            "delivery.contact_phone must be a phone number (digits, with + - ( ) or spaces).",
        )
        .param("delivery.contact_phone"));
    }
    let to = o2o_geo::LatLng::new(addr.lat, addr.lng)
        .map_err(|e| Error::invalid("coordinates_invalid", e.to_string()).param("delivery.lat"))?;
    let from = o2o_geo::LatLng::new(store.lat, store.lng).map_err(Error::internal)?;
    let distance = o2o_geo::distance_m_rounded(from, to);
    if store.delivery_radius_m <= 0 {
        return Err(Error::conflict(
            "delivery_unavailable",
            "This store does not deliver.",
        ));
    }
    if i64::from(distance) > store.delivery_radius_m {
        return Err(Error::invalid(
            "outside_delivery_area",
            format!(
                "This address is {:.1} km away; the store delivers within {:.1} km.",
                f64::from(distance) / 1000.0,
                store.delivery_radius_m as f64 / 1000.0
            ),
        )
        .param("delivery"));
    }
    addr.distance_m = Some(distance);
    let minutes = match settings.promise_minutes {
        Some(m) => m,
        None => settings.prep_minutes + (f64::from(distance) / RIDER_M_PER_MIN).ceil() as i64,
    };
    Ok(DeliveryTerms {
        address: addr,
        distance_m: distance,
        minutes,
        promised_at: now + minutes * 60_000_000,
    })
}

fn below_minimum(min_order: i64, subtotal: i64, cur: o2o_ledger::Currency) -> Error {
    let (min_order, subtotal) = (
        Money::new(min_order, cur).shown(),
        Money::new(subtotal, cur).shown(),
    );
    Error::invalid(
        "below_minimum_order",
        format!("Delivery needs at least {min_order} of items; this order has {subtotal}."),
    )
    .param("items")
}

/// `POST /v1/orders/quote`: what a delivery of these items to this address would cost and when
/// it would arrive, by the same rules as placing it; nothing is held or written.
pub async fn quote(app: &AppState, input: QuoteRequest) -> Result<DeliveryQuote> {
    if input.channel != Channel::Delivery.as_str() {
        return Err(Error::invalid(
            "channel_invalid",
            "Only delivery orders are quoted (channel: delivery).",
        )
        .param("channel"));
    }
    let store_id = input
        .store_id
        .as_deref()
        .ok_or_else(|| Error::invalid("store_id_required", "Name the store.").param("store_id"))?;
    let store = crate::stores::service::find_store(&app.db, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    let terms = crate::merchants::service::payment_terms(&app.db, &store.merchant_id)
        .await?
        .ok_or_else(store_not_found)?;
    if !terms.takes_payments() {
        return Err(not_trading());
    }
    let now = now_us();
    if !store.open_now {
        return Err(closed());
    }
    let (lines, currency) = price(app, &store.id, &input.items).await?;
    let currency = currency.unwrap_or_else(|| "CNY".to_owned());
    parse_currency(&currency)?;
    let subtotal = lines.iter().try_fold(0_i64, |sum, l| {
        l.unit_price
            .checked_mul(l.quantity)
            .and_then(|v| sum.checked_add(v))
    });
    let subtotal = subtotal.ok_or_else(|| {
        Error::invalid("amount_too_large", "This order comes to too much.").param("items")
    })?;
    let settings = store::settings(&app.db, &store.id).await?;
    let terms = delivery_terms(&store, &settings, input.delivery, now)?;
    Ok(DeliveryQuote {
        store_id: store.id,
        currency,
        subtotal,
        delivery_fee: settings.delivery_fee,
        total: subtotal.saturating_add(settings.delivery_fee),
        min_order: settings.min_order,
        below_minimum_by: (settings.min_order - subtotal).max(0),
        distance_m: terms.distance_m,
        delivery_radius_m: store.delivery_radius_m,
        promise_minutes: terms.minutes,
        promised_at: rfc3339(terms.promised_at),
    })
}

/// `POST /v1/orders`.
pub async fn create(
    app: &AppState,
    principal: &Principal,
    input: CreateOrder,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let channel = Channel::parse(&input.channel).ok_or_else(|| {
        Error::invalid(
            "channel_invalid",
            "channel must be dine_in, pickup, delivery or scan_and_go.",
        )
        .param("channel")
    })?;
    let actor = actor_of(principal)?;
    if matches!(actor, Actor::Staff { .. }) && channel != Channel::DineIn {
        return Err(Error::forbidden(
            "consumer_only",
            "Staff open table orders; other orders are the consumer's.",
        ));
    }
    if channel != Channel::DineIn && (input.qr.is_some() || input.table_id.is_some()) {
        return Err(
            Error::invalid("table_not_allowed", "Only a dine-in order has a table.")
                .param("table_id"),
        );
    }
    if channel != Channel::Delivery && input.delivery.is_some() {
        return Err(Error::invalid(
            "delivery_not_allowed",
            "Only a delivery order has an address.",
        )
        .param("delivery"));
    }
    if channel != Channel::Pickup && input.pickup_at.is_some() {
        return Err(Error::invalid(
            "pickup_at_not_allowed",
            "Only a pickup order has a pickup time.",
        )
        .param("pickup_at"));
    }
    let note = optional_text(input.note.clone(), 200, "note")?;
    let at = place_of(app, principal, &input).await?;
    let store = &at.store;
    let now = now_us();
    let open_now = store.open_now;
    let (lines, currency) = price(app, &store.id, &input.items).await?;
    if lines.is_empty() && channel != Channel::ScanAndGo {
        return Err(Error::invalid("items_required", "Add at least one item.").param("items"));
    }
    let currency = currency.unwrap_or_else(|| "CNY".to_owned());
    let cur = parse_currency(&currency)?;
    let user = match &actor {
        Actor::Consumer(u) => Some(u.clone()),
        Actor::Staff { .. } => None,
    };
    let mut order = blank(
        &store.merchant_id,
        &store.id,
        channel,
        Status::Open,
        &currency,
        user,
        discounts_for(app),
    );
    order.note = note;
    match channel {
        Channel::DineIn => {
            let Some(table) = at.table_id.clone() else {
                return Err(Error::invalid(
                    "table_required",
                    "A dine-in order is for a table: scan its code.",
                )
                .param("qr"));
            };
            if !open_now {
                return Err(closed());
            }
            let pay = match &input.payment {
                None => None,
                Some(_) if !input.place => {
                    return Err(Error::invalid(
                        "place_required",
                        "Paying with the items sends them to the kitchen: set place: true.",
                    )
                    .param("payment"));
                }
                Some(p) => {
                    if p.amount.is_some() {
                        return Err(Error::invalid(
                            "amount_not_allowed",
                            "Paying while ordering pays all that is due; pay a share with POST /v1/orders/{id}/pay.",
                        )
                        .param("payment.amount"));
                    }
                    Some(Box::new(order_payment(
                        principal,
                        &order.id,
                        &store.merchant_id,
                        store,
                        at.fee_bps,
                        cur,
                        p,
                    )?))
                }
            };
            order.table_id = Some(table);
            let op = OrderOp::Table {
                template: Box::new(order),
                actor,
                lines,
                place: input.place,
                pay,
            };
            return app
                .payments
                .run(Op::Order(Box::new(op)), idem(principal, key, hash))
                .await;
        }
        Channel::Pickup => {
            let settings = store::settings(&app.db, &store.id).await?;
            let earliest = now + settings.prep_minutes * 60_000_000;
            let at_us = match &input.pickup_at {
                None => {
                    if !open_now {
                        return Err(closed());
                    }
                    earliest
                }
                Some(text) => {
                    let t: jiff::Timestamp = text.parse().map_err(|e| {
                        Error::invalid(
                            "pickup_at_invalid",
                            format!("pickup_at must be an RFC 3339 time ({e})."),
                        )
                        .param("pickup_at")
                    })?;
                    let t = t.as_microsecond();
                    if t < earliest - 60_000_000 || t > now + PICKUP_AHEAD_MAX_US {
                        return Err(Error::invalid(
                            "pickup_at_out_of_range",
                            format!(
                                "Pick a time from {} minutes from now up to 7 days ahead.",
                                settings.prep_minutes
                            ),
                        )
                        .param("pickup_at"));
                    }
                    if !crate::stores::hours::is_open_at(&store.opening_hours, &store.timezone, t) {
                        return Err(Error::conflict(
                            "store_closed",
                            "The store is closed at that time; pick a time within its opening hours.",
                        )
                        .param("pickup_at"));
                    }
                    t
                }
            };
            order.pickup_at = Some(at_us);
            order.promised_at = Some(at_us);
            order.pickup_number = Some(six_digits());
        }
        Channel::Delivery => {
            if !open_now {
                return Err(closed());
            }
            let Some(addr) = input.delivery.clone() else {
                return Err(Error::invalid(
                    "delivery_required",
                    "Say where to deliver: delivery.address, lat, lng.",
                )
                .param("delivery"));
            };
            let subtotal: i64 = lines
                .iter()
                .map(|l| l.unit_price.saturating_mul(l.quantity))
                .sum();
            let settings = store::settings(&app.db, &store.id).await?;
            let terms = delivery_terms(store, &settings, addr, now)?;
            if subtotal < settings.min_order {
                return Err(below_minimum(settings.min_order, subtotal, cur));
            }
            order.promised_at = Some(terms.promised_at);
            order.delivery_fee = settings.delivery_fee;
            order.delivery = Some(terms.address);
        }
        Channel::ScanAndGo => {
            if !open_now {
                return Err(closed());
            }
            if input.payment.is_some() && lines.is_empty() {
                return Err(
                    Error::invalid("items_required", "Scan something first.").param("items")
                );
            }
        }
    }
    let pay = match &input.payment {
        Some(p) => {
            if p.amount.is_some() {
                return Err(Error::invalid(
                    "amount_not_allowed",
                    "An order paid while ordering is paid in full.",
                )
                .param("payment.amount"));
            }
            Some(Box::new(order_payment(
                principal,
                &order.id,
                &store.merchant_id,
                store,
                at.fee_bps,
                cur,
                p,
            )?))
        }
        None => None,
    };
    let op = OrderOp::Create {
        order: Box::new(order),
        lines,
        pay,
    };
    app.payments
        .run(Op::Order(Box::new(op)), idem(principal, key, hash))
        .await
}

/// The order as its caller may see it: the consumer who placed it (anyone at the table for a
/// dine-in order), or the merchant's staff.
pub async fn get(app: &AppState, principal: &Principal, id: &str) -> Result<OrderData> {
    let row = store::get(&app.db, id).await?.ok_or_else(order_not_found)?;
    // Never show an order state a crash could still take back (see `Db::durable`).
    app.db.durable_since(row.updated_at).await;
    let order = OrderData::from_row(row)?;
    let visible = match principal.kind {
        PrincipalKind::Consumer => {
            order.channel == Channel::DineIn || order.user_id.as_deref() == Some(&principal.id)
        }
        PrincipalKind::Staff | PrincipalKind::ApiKey => {
            principal.merchant_id.as_deref() == Some(order.merchant_id.as_str())
        }
        PrincipalKind::Operator => true,
        PrincipalKind::Rider => false,
    };
    if !visible {
        return Err(order_not_found());
    }
    Ok(order)
}

/// The open order of the table a consumer scanned, if any.
pub async fn at_table(app: &AppState, table_id: &str) -> Result<Option<OrderData>> {
    match store::open_at_table(&app.db, table_id).await? {
        Some(r) => {
            app.db.durable_since(r.updated_at).await;
            Ok(Some(OrderData::from_row(r)?))
        }
        None => Ok(None),
    }
}

async fn run(
    app: &AppState,
    principal: &Principal,
    op: OrderOp,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    app.payments
        .run(Op::Order(Box::new(op)), idem(principal, key, hash))
        .await
}

/// `POST /v1/orders/{id}/items`.
pub async fn add_items(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: AddItems,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let order = get(app, principal, id).await?;
    let actor = actor_of(principal)?;
    if input.items.is_empty() {
        return Err(Error::invalid("items_required", "Add at least one item.").param("items"));
    }
    let (lines, currency) = price(app, &order.store_id, &input.items).await?;
    if currency.is_some_and(|c| c != order.currency) {
        return Err(Error::invalid(
            "currency_mismatch",
            format!("This order is in {}.", order.currency),
        )
        .param("items"));
    }
    if order.channel == Channel::DineIn {
        let store = crate::stores::service::get_store(&app.db, &order.store_id).await?;
        if !store.open_now {
            return Err(closed());
        }
    }
    run(
        app,
        principal,
        OrderOp::AddLines {
            order_id: order.id,
            actor,
            lines,
            place: input.place,
        },
        key,
        hash,
    )
    .await
}

/// Reads the EAN-13 / UPC-A barcode in a photo (JPEG, PNG or WebP): what scan-and-go does with
/// a picture of a product's label. Decoding runs off the request threads.
pub async fn barcode_in_photo(bytes: axum::body::Bytes) -> Result<String> {
    tokio::task::spawn_blocking(move || read_barcode(&bytes))
        .await
        .map_err(Error::internal)?
}

fn read_barcode(bytes: &[u8]) -> Result<String> {
    use image::{ImageFormat, ImageReader, Limits};
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(Error::internal)?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => {
            return Err(Error::new(
                crate::error::Kind::UnsupportedMediaType,
                "unsupported_image_type",
                "Send a JPEG, PNG or WebP photo.",
            ));
        }
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(6_000);
    limits.max_image_height = Some(6_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        Error::invalid(
            "invalid_image",
            format!("The photo could not be read: {e}."),
        )
    })?;
    let luma = img.to_luma8();
    let (w, h) = luma.dimensions();
    let found = rxing::helpers::detect_in_luma(
        luma.into_raw(),
        w,
        h,
        Some(rxing::BarcodeFormat::EAN_13),
    )
    .or_else(|_| {
        let luma = img.to_luma8();
        rxing::helpers::detect_in_luma(luma.into_raw(), w, h, Some(rxing::BarcodeFormat::UPC_A))
    })
    .map_err(|_| {
        Error::invalid(
            "barcode_not_found",
            "No EAN-13 or UPC-A barcode could be read in this photo; try closer, or type the number.",
        )
    })?;
    Ok(found.getText().to_owned())
}

/// `POST /v1/orders/{id}/items/photo`: adds the product whose barcode is in the photo.
pub async fn add_by_photo(
    app: &AppState,
    principal: &Principal,
    id: &str,
    bytes: axum::body::Bytes,
    key: Option<String>,
) -> Result<Reply> {
    let order = get(app, principal, id).await?;
    if order.channel != Channel::ScanAndGo {
        return Err(Error::conflict(
            "not_scan_and_go",
            "Photos of barcodes add to scan-and-go baskets.",
        ));
    }
    let barcode = barcode_in_photo(bytes).await?;
    let hash = format!("items-photo:{id}:{barcode}");
    add_items(
        app,
        principal,
        id,
        AddItems {
            items: vec![ItemInput {
                product_id: None,
                barcode: Some(barcode),
                quantity: Some(1),
                options: Default::default(),
            }],
            place: false,
        },
        key,
        &hash,
    )
    .await
}

/// `POST /v1/orders/{id}/place`: the table's cart goes to the kitchen.
pub async fn place(
    app: &AppState,
    principal: &Principal,
    id: &str,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let order = get(app, principal, id).await?;
    let actor = actor_of(principal)?;
    run(
        app,
        principal,
        OrderOp::Place {
            order_id: order.id,
            actor,
        },
        key,
        hash,
    )
    .await
}

/// A kitchen move: accept, start, ready, complete (staff).
pub async fn step(
    app: &AppState,
    principal: &Principal,
    id: &str,
    step: Step,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let merchant_id = crate::payments::service::staff_merchant(principal, Role::Cashier)?;
    run(
        app,
        principal,
        OrderOp::Step {
            order_id: id.to_owned(),
            merchant_id,
            step,
        },
        key,
        hash,
    )
    .await
}

async fn day_of(app: &AppState, store_id: &str) -> Result<String> {
    let store = crate::stores::service::find_store(&app.db, store_id).await?;
    Ok(business_day(
        store.as_ref().map(|s| s.timezone.as_str()),
        now_us(),
    ))
}

/// `POST /v1/orders/{id}/cancel`: the consumer before the kitchen accepts; staff until it is
/// completed. What was paid goes back to where it came from.
pub async fn cancel(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: CancelOrder,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let order = get(app, principal, id).await?;
    let actor = actor_of(principal)?;
    if matches!(actor, Actor::Staff { .. }) {
        crate::payments::service::staff_merchant(principal, Role::Cashier)?;
    }
    let reason = optional_text(input.reason, 200, "reason")?;
    let business_day = day_of(app, &order.store_id).await?;
    run(
        app,
        principal,
        OrderOp::Cancel {
            order_id: order.id,
            actor,
            reason,
            business_day,
        },
        key,
        hash,
    )
    .await
}

/// `POST /v1/orders/{id}/refund` (staff): refunds the order's payments, newest first.
pub async fn refund(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: RefundOrder,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let merchant_id = crate::payments::service::staff_merchant(principal, Role::Manager)?;
    // A malformed amount is the request's fault whatever the order holds: 400 before anything
    // about the order is looked at (the sequencer checks it against what is left to refund).
    if input.amount.is_some_and(|a| a <= 0) {
        return Err(
            Error::invalid("amount_invalid", "The amount must be positive.").param("amount"),
        );
    }
    let order = get(app, principal, id).await?;
    let reason = optional_text(input.reason, 200, "reason")?;
    let business_day = day_of(app, &order.store_id).await?;
    run(
        app,
        principal,
        OrderOp::Refund {
            order_id: order.id,
            merchant_id,
            amount: input.amount,
            reason,
            business_day,
            staff_id: (principal.kind == PrincipalKind::Staff).then(|| principal.id.clone()),
        },
        key,
        hash,
    )
    .await
}

/// `POST /v1/orders/{id}/pay`: a payment for the order (all that is due, or a share of a table's
/// bill); answers the payment.
pub async fn pay(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: PayInput,
    key: Option<String>,
    hash: &str,
) -> Result<Reply> {
    let order = get(app, principal, id).await?;
    if principal.kind == PrincipalKind::Consumer
        && order.channel != Channel::DineIn
        && order.user_id.as_deref() != Some(&principal.id)
    {
        return Err(order_not_found());
    }
    let store = crate::stores::service::get_store(&app.db, &order.store_id).await?;
    let terms = crate::merchants::service::payment_terms(&app.db, &order.merchant_id)
        .await?
        .ok_or_else(order_not_found)?;
    // An order placed while the merchant traded is not paid once it no longer may (its
    // verification withdrawn since): the same rule as placing one.
    if !terms.takes_payments() {
        return Err(not_trading());
    }
    let payment = order_payment(
        principal,
        &order.id,
        &order.merchant_id,
        &store,
        terms.fee_bps,
        parse_currency(&order.currency)?,
        &input,
    )?;
    app.payments
        .run(Op::Pay(Box::new(payment)), idem(principal, key, hash))
        .await
}

/// A guest logged in: its orders are the account's now.
pub async fn merge_guest(tx: &mut crate::db::Tx, from: &str, into: &str) -> Result<()> {
    store::merge_guest(tx, from, into).await?;
    Ok(())
}

/// `GET /v1/me/orders`.
pub async fn mine(app: &AppState, user_id: &str, page: &Page) -> Result<List<Order>> {
    let rows = store::of_user(
        &app.db,
        user_id,
        page.starting_after.as_deref(),
        page.fetch_limit(),
    )
    .await?;
    app.db
        .durable_since_latest(rows.iter().map(|r| r.updated_at))
        .await;
    let list = page.finish(rows);
    let mut data = Vec::with_capacity(list.data.len());
    for r in list.data {
        data.push(OrderData::from_row(r)?.public());
    }
    Ok(List {
        data,
        has_more: list.has_more,
    })
}

/// A store's orders of the last `hours` (the kitchen board and the counter), oldest first.
pub async fn of_store(
    app: &AppState,
    merchant_id: &str,
    store_id: &str,
    hours: i64,
) -> Result<Vec<Order>> {
    if crate::stores::service::own_store_timezone(&app.db, merchant_id, store_id)
        .await?
        .is_none()
    {
        return Err(store_not_found().param("id"));
    }
    let since = now_us() - hours.clamp(1, 72) * 3_600_000_000;
    let rows = store::of_store(&app.db, merchant_id, store_id, since, 500).await?;
    app.db
        .durable_since_latest(rows.iter().map(|r| r.updated_at))
        .await;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(OrderData::from_row(r)?.public());
    }
    Ok(out)
}

/// Which code an order has to show (pickup code of a paid pickup order in the kitchen, exit pass
/// of a paid scan-and-go order that is ready) and how long one stays valid.
fn code_kind(order: &OrderData) -> Result<(TokenKind, i64)> {
    match (order.channel, order.status) {
        (Channel::Pickup, s) if s.in_kitchen() && order.fully_paid() => {
            Ok((TokenKind::Pickup, PICKUP_CODE_TTL_S))
        }
        (Channel::ScanAndGo, Status::Ready) if order.fully_paid() => {
            Ok((TokenKind::ExitPass, EXIT_PASS_TTL_S))
        }
        _ => Err(Error::conflict(
            "no_code",
            format!(
                "A {} order that is {} has no code to show.",
                order.channel.as_str(),
                order.status.as_str()
            ),
        )),
    }
}

/// The consumer's own order, with the code it has to show.
async fn own_order_with_code(
    app: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(OrderData, TokenKind, i64)> {
    let order = get(app, principal, id).await?;
    if principal.kind != PrincipalKind::Consumer
        || order.user_id.as_deref() != Some(principal.id.as_str())
    {
        return Err(order_not_found());
    }
    let (kind, ttl) = code_kind(&order)?;
    Ok((order, kind, ttl))
}

/// The order's code: the one kept for it while it can be shown, else a new one that replaces
/// it. Race-free (see [`crate::codes::service::slot_token`]): requests racing for an order's
/// code all get the same one, and the order never has two live codes.
async fn issue_code(
    app: &AppState,
    principal: &Principal,
    order: &OrderData,
    kind: TokenKind,
    ttl: i64,
) -> Result<OrderCode> {
    let (text, expires_at) = crate::codes::service::slot_token(
        &app.db,
        &app.keys,
        kind,
        &order.id,
        Some(&order.merchant_id),
        Some(&order.store_id),
        &principal.id,
        ttl,
    )
    .await?;
    Ok(order_code(order, kind, text, expires_at))
}

fn order_code(order: &OrderData, kind: TokenKind, text: String, expires_at: i64) -> OrderCode {
    OrderCode {
        kind: kind.as_str(),
        code: text,
        pickup_number: order.pickup_number.clone(),
        expires_at: rfc3339(expires_at),
    }
}

/// The code an order page shows, as it stands.
pub enum CodeState {
    /// The order's code: the same text on every view until it is used or expires.
    Live(OrderCode),
    Used,
    Expired,
}

/// The signed code a consumer shows for their order, for its page: signed when first needed,
/// then the same code (rebuilt from what was kept) until it is used or expires, when the page
/// says so instead of quietly signing another.
pub async fn shown_code(app: &AppState, principal: &Principal, id: &str) -> Result<CodeState> {
    let (order, kind, ttl) = own_order_with_code(app, principal, id).await?;
    let kept =
        crate::codes::service::kept_token(&app.db, &app.keys, kind, &order.id, &principal.id)
            .await?;
    Ok(match kept {
        Some(KeptToken::Live { text, expires_at }) => {
            CodeState::Live(order_code(&order, kind, text, expires_at))
        }
        Some(KeptToken::Used) => CodeState::Used,
        Some(KeptToken::Expired) => CodeState::Expired,
        None => CodeState::Live(issue_code(app, principal, &order, kind, ttl).await?),
    })
}

/// `POST /v1/orders/{id}/code`: the code a consumer shows for their order (the pickup code of a
/// paid pickup order, or the exit pass of a paid scan-and-go order). The code kept for the order
/// while it is usable; a new one when there is none yet, or it expired, or it was used while the
/// order still waits for its handover (`409 no_code` once the order is handed over).
pub async fn code(app: &AppState, principal: &Principal, id: &str) -> Result<OrderCode> {
    let (order, kind, ttl) = own_order_with_code(app, principal, id).await?;
    // A used code is replaced too while the order still waits for its handover (the scan went
    // through but the handover did not): the consumer would be stuck at the counter or the door
    // without a new one. The order itself still completes only once.
    issue_code(app, principal, &order, kind, ttl).await
}

/// Completes the order a scanned pickup code or exit pass stands for (the code is already
/// marked used by the codes capability).
pub async fn complete_scanned(
    app: &AppState,
    principal: &Principal,
    order_id: &str,
) -> Result<Order> {
    let merchant_id = crate::payments::service::staff_merchant(principal, Role::Cashier)?;
    app.payments
        .run(
            Op::Order(Box::new(OrderOp::Step {
                order_id: order_id.to_owned(),
                merchant_id,
                step: Step::Complete,
            })),
            None,
        )
        .await?;
    Ok(get(app, principal, order_id).await?.public())
}

/// `POST /v1/stores/{id}/handover`: the cashier scans a pickup code or exit pass, or types a
/// pickup number; the order is checked, the code used once, and the order completed.
pub async fn handover(
    app: &AppState,
    principal: &Principal,
    scope: &crate::db::MerchantScope,
    store_id: &str,
    input: Handover,
) -> Result<HandedOver> {
    crate::payments::service::staff_merchant(principal, Role::Cashier)?;
    let code = input.code.trim();
    if !crate::stores::service::own_store_exists(&app.db, scope, store_id).await? {
        return Err(store_not_found().param("id"));
    }
    let bad = || {
        Error::invalid(
            "qr_invalid",
            "This is not a valid pickup code or exit pass.",
        )
        .param("code")
    };
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let rows = store::by_pickup_number(&app.db, store_id, code).await?;
        let mut found = Vec::new();
        for r in rows {
            let o = OrderData::from_row(r)?;
            if o.channel == Channel::Pickup && o.fully_paid() {
                found.push(o);
            }
        }
        let order = match found.len() {
            0 => {
                return Err(Error::not_found(
                    "order_not_found",
                    "No order waiting for pickup has this number.",
                )
                .param("code"));
            }
            1 => found.remove(0),
            _ => {
                return Err(Error::conflict(
                    "pickup_number_ambiguous",
                    "Several orders have this number: scan the pickup code instead.",
                )
                .param("code"));
            }
        };
        let done = complete_scanned(app, principal, &order.id).await?;
        return Ok(HandedOver {
            kind: "pickup".into(),
            order: done,
        });
    }
    if !code.starts_with(o2o_codes::token::PREFIX) {
        return Err(bad());
    }
    // Check the order before using the code, so a code shown too early stays usable.
    let claims = app
        .keys
        .verify(code, now_us() / 1_000_000)
        .map_err(|e| match e {
            o2o_codes::token::TokenError::Expired => Error::conflict(
                "code_expired",
                "This code has expired; ask for a fresh one.",
            )
            .param("code"),
            _ => bad(),
        })?;
    if !matches!(claims.kind, TokenKind::Pickup | TokenKind::ExitPass) {
        return Err(bad());
    }
    let order = get(app, principal, &claims.subject).await?;
    if order.store_id != store_id {
        return Err(
            Error::conflict("code_wrong_store", "This code is for another store.").param("code"),
        );
    }
    // A code shown again after its handover is told as used, not as an order that cannot move.
    if crate::codes::service::token_used(&app.db, &claims).await? {
        return Err(Error::conflict("code_used", "This code was already used.").param("code"));
    }
    if !Step::Complete
        .allowed_from(order.channel)
        .contains(&order.status)
    {
        return Err(illegal(order.status, "completed"));
    }
    let scanned = crate::codes::service::scan(
        &app.db,
        &app.keys,
        scope,
        &principal.id,
        crate::codes::model::ScanRequest {
            payload: code.to_owned(),
            store_id: Some(store_id.to_owned()),
        },
    )
    .await
    .map_err(|e| e.param("code"))?;
    let done = complete_scanned(app, principal, &order.id).await?;
    Ok(HandedOver {
        kind: scanned.kind,
        order: done,
    })
}

/// A store's ordering settings (staff).
pub async fn settings(
    app: &AppState,
    scope: &crate::db::MerchantScope,
    store_id: &str,
) -> Result<OrderSettings> {
    if !crate::stores::service::own_store_exists(&app.db, scope, store_id).await? {
        return Err(store_not_found().param("id"));
    }
    Ok(store::settings(&app.db, store_id).await?)
}

pub async fn put_settings(
    app: &AppState,
    scope: &crate::db::MerchantScope,
    store_id: &str,
    s: OrderSettings,
) -> Result<OrderSettings> {
    if !crate::stores::service::own_store_exists(&app.db, scope, store_id).await? {
        return Err(store_not_found().param("id"));
    }
    check_settings(&s)?;
    store::put_settings(&app.db, scope.merchant_id(), store_id, &s, now_us()).await?;
    Ok(s)
}

fn check_settings(s: &OrderSettings) -> Result<()> {
    if !(0..=100_000).contains(&s.delivery_fee) {
        return Err(Error::invalid(
            "delivery_fee_out_of_range",
            "delivery_fee must be between 0 and 100000.",
        )
        .param("delivery_fee"));
    }
    if !(0..=1_000_000).contains(&s.min_order) {
        return Err(Error::invalid(
            "min_order_out_of_range",
            "min_order must be between 0 and 1000000.",
        )
        .param("min_order"));
    }
    if s.promise_minutes.is_some_and(|m| !(5..=240).contains(&m)) {
        return Err(Error::invalid(
            "promise_minutes_out_of_range",
            "promise_minutes must be between 5 and 240.",
        )
        .param("promise_minutes"));
    }
    if !(0..=240).contains(&s.prep_minutes) {
        return Err(Error::invalid(
            "prep_minutes_out_of_range",
            "prep_minutes must be between 0 and 240.",
        )
        .param("prep_minutes"));
    }
    Ok(())
}

/// The console's delivery settings in one go: the store's delivery radius (kept by the stores
/// capability) and its ordering settings, every field checked before anything is written.
pub async fn put_delivery(
    app: &AppState,
    scope: &crate::db::MerchantScope,
    store_id: &str,
    delivery_radius_m: i64,
    s: OrderSettings,
) -> Result<OrderSettings> {
    if !crate::stores::service::own_store_exists(&app.db, scope, store_id).await? {
        return Err(store_not_found().param("id"));
    }
    check_settings(&s)?;
    if !(0..=50_000).contains(&delivery_radius_m) {
        return Err(Error::invalid(
            "radius_out_of_range",
            "delivery_radius_m must be between 0 and 50000 metres.",
        )
        .param("delivery_radius_m"));
    }
    let mut tx = app.db.begin().await?;
    crate::stores::service::update_store(
        &mut tx,
        scope,
        store_id,
        crate::stores::model::UpdateStore {
            delivery_radius_m: Some(delivery_radius_m),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    store::put_settings(&app.db, scope.merchant_id(), store_id, &s, now_us()).await?;
    Ok(s)
}

/// Cancels unpaid orders whose reservation lapsed (their stock goes back on sale).
pub async fn sweep_lapsed(app: &AppState) -> Result<usize> {
    let now = now_us();
    let due = store::lapsed(&app.db, now, 500).await?;
    let mut n = 0;
    for (id, tz) in due {
        let op = OrderOp::Expire {
            order_id: id,
            business_day: business_day(Some(&tz), now),
        };
        if app
            .payments
            .run(Op::Order(Box::new(op)), None)
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    Ok(n)
}
