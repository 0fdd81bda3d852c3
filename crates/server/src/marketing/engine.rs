//! Coupons in the sequencer: claims (stock and per-consumer limits, so a flash claim issues
//! exactly the stock), and using a coupon on a payment (checked, marked used, given back when
//! the payment is refunded in full), in the same batch transaction as the money.

use super::model::*;
use super::store;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::http::Reply;
use crate::payments::engine::{self as pe, NewPayment, State, ids_json};
use std::collections::{HashMap, HashSet};

/// A consumer claims one coupon of a template (audience already checked by the service).
#[derive(Clone, Debug)]
pub struct Claim {
    pub template_id: String,
    pub user_id: String,
    pub coupon_id: String,
    /// `center`, `campaign`, `push`, `api`; `tier` and `birthday` for member benefits; `points`
    /// for a member's points exchange.
    pub via: &'static str,
}

/// The templates and coupons of one batch.
#[derive(Default)]
pub struct Batch {
    pub(crate) templates: HashMap<String, TemplateRow>,
    counts: HashMap<(String, String), i64>,
    pub(crate) coupons: HashMap<String, CouponRow>,
    changed_templates: Vec<String>,
    changed_coupons: Vec<String>,
    changed_set: HashSet<String>,
    /// Templates this batch sold out (the node answers later claims from memory).
    pub(crate) sold_out: Vec<String>,
}

impl Batch {
    fn touch_coupon(&mut self, id: &str) {
        if self.changed_set.insert(id.to_owned()) {
            self.changed_coupons.push(id.to_owned());
        }
    }

    fn touch_template(&mut self, id: &str) {
        if self.changed_set.insert(id.to_owned()) {
            self.changed_templates.push(id.to_owned());
        }
    }
}

/// Loads the coupons the batch uses or gives back, their templates and the claimed templates
/// (locked on PostgreSQL), and how many of each claimed template each claimer holds.
///
/// `grants` are (template, consumer) pairs the batch may issue without a claim: the coupon of a
/// tier a member card may move up into (see [`grant`]).
pub(crate) async fn load(
    tx: &mut Tx,
    claims: &[&Claim],
    grants: &[(String, String)],
    coupon_ids: &[&str],
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    if !coupon_ids.is_empty() {
        let rows = store::coupons_for_update(tx, ids_json(coupon_ids.iter().copied())).await?;
        for r in rows {
            state.coupons.coupons.insert(r.id.clone(), r);
        }
    }
    let template_ids: Vec<String> = claims
        .iter()
        .map(|c| c.template_id.clone())
        .chain(
            state
                .coupons
                .coupons
                .values()
                .map(|c| c.template_id.clone()),
        )
        .chain(grants.iter().map(|(t, _)| t.clone()))
        .collect();
    if !template_ids.is_empty() {
        let rows =
            store::templates_for_update(tx, ids_json(template_ids.iter().map(String::as_str)))
                .await?;
        for r in rows {
            state.coupons.templates.insert(r.id.clone(), r);
        }
    }
    if !claims.is_empty() || !grants.is_empty() {
        let mut pairs: Vec<(&str, &str)> = claims
            .iter()
            .map(|c| (c.template_id.as_str(), c.user_id.as_str()))
            .chain(grants.iter().map(|(t, u)| (t.as_str(), u.as_str())))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let json: Vec<serde_json::Value> = pairs
            .iter()
            .map(|(t, u)| serde_json::json!({"t": t, "u": u}))
            .collect();
        for c in store::claim_counts(tx, serde_json::to_string(&json)?).await? {
            state.coupons.counts.insert((c.template_id, c.user_id), c.n);
        }
    }
    Ok(())
}

pub fn sold_out() -> Error {
    Error::conflict(
        "coupon_sold_out",
        "Every coupon of this kind has been claimed.",
    )
}

/// A template that is not priced in points, or not by the card's merchant.
pub fn not_exchangeable() -> Error {
    Error::conflict(
        "coupon_not_exchangeable",
        "This coupon cannot be exchanged for this card's points.",
    )
    .param("coupon_template_id")
}

/// The points one coupon of a template costs on a card of `merchant_id`: its `points_price`,
/// or `409 coupon_not_exchangeable` for a template claimed free or of another merchant.
pub(crate) fn points_price(state: &State, template_id: &str, merchant_id: &str) -> Result<i64> {
    let t = state.coupons.templates.get(template_id).ok_or_else(|| {
        Error::not_found("template_not_found", "No such coupon.").param("coupon_template_id")
    })?;
    match t.points_price {
        Some(p) if t.merchant_id == merchant_id => Ok(p),
        _ => Err(not_exchangeable()),
    }
}

/// Issues the coupon a member's points paid for (see [`crate::members::engine`]): the claim
/// path itself, so the claim window, the stock and the per-consumer limit hold as for a claim,
/// and a refusal changes nothing.
pub(crate) fn exchange(state: &mut State, c: &Claim) -> Result<Coupon> {
    issue(state, c)
}

/// Applies a claim.
pub(crate) fn claim(state: &mut State, c: &Claim) -> Result<Reply> {
    let public = issue(state, c)?;
    Reply::created(&public)
}

/// Issues one coupon of a template to a consumer without a claim of theirs (the coupon of a
/// member tier reached, a birthday coupon), under the same rules as a claim: the claim window,
/// the stock and the per-consumer limit. `None` when a rule refuses it: a benefit that cannot be
/// given is skipped, it never fails the payment or sweep that triggered it.
pub(crate) fn grant(
    state: &mut State,
    template_id: &str,
    user_id: &str,
    via: &'static str,
) -> Option<String> {
    let claim = Claim {
        template_id: template_id.to_owned(),
        user_id: user_id.to_owned(),
        coupon_id: crate::ids::CouponId::generate().as_str().to_owned(),
        via,
    };
    issue(state, &claim).ok().map(|c| c.id)
}

fn issue(state: &mut State, c: &Claim) -> Result<Coupon> {
    let now = state.now;
    let t = state
        .coupons
        .templates
        .get(&c.template_id)
        .ok_or_else(|| Error::not_found("template_not_found", "No such coupon.").param("id"))?;
    if t.claim_starts_at > now || t.claim_ends_at.is_some_and(|e| e <= now) {
        return Err(Error::conflict(
            "coupon_not_claimable",
            "This coupon cannot be claimed now (outside its claim window).",
        ));
    }
    // A coupon whose use window has ended would be issued already expired.
    if t.use_ends_at.is_some_and(|e| e <= now) {
        return Err(Error::conflict(
            "coupon_not_claimable",
            "This coupon cannot be claimed now (its use window has ended).",
        ));
    }
    if t.issued >= t.total_stock {
        return Err(sold_out());
    }
    let key = (c.template_id.clone(), c.user_id.clone());
    let held = state.coupons.counts.get(&key).copied().unwrap_or(0);
    if held >= t.per_consumer_limit {
        return Err(Error::conflict(
            "coupon_limit_reached",
            format!(
                "You already hold {held} of this coupon; the limit is {}.",
                t.per_consumer_limit
            ),
        )
        .arg("held", held)
        .arg("limit", t.per_consumer_limit));
    }
    let valid_from = t.use_starts_at.map_or(now, |s| s.max(now));
    let by_days = t
        .valid_days_after_claim
        .map(|d| now.saturating_add(d.saturating_mul(86_400_000_000)));
    let valid_until = match (t.use_ends_at, by_days) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let row = CouponRow {
        id: c.coupon_id.clone(),
        template_id: t.id.clone(),
        merchant_id: t.merchant_id.clone(),
        user_id: c.user_id.clone(),
        status: "active".into(),
        valid_from,
        valid_until,
        claimed_via: c.via.to_owned(),
        claimed_at: now,
        used_at: None,
        payment_id: None,
        order_id: None,
        discount: 0,
    };
    let t = state
        .coupons
        .templates
        .get_mut(&c.template_id)
        .expect("present");
    t.issued += 1;
    if t.issued == t.total_stock {
        state.coupons.sold_out.push(t.id.clone());
    }
    let public = row.public(t, now);
    *state.coupons.counts.entry(key).or_default() += 1;
    state.coupons.touch_template(&c.template_id);
    state.coupons.touch_coupon(&row.id);
    state.coupons.coupons.insert(row.id.clone(), row);
    Ok(public)
}

/// The unit price of a product on the order, if it is there.
pub(crate) type FreeItemPrice = dyn Fn(&str) -> Option<i64>;

/// What using a coupon on a bill needs to know.
pub(crate) struct Bill<'a> {
    pub user_id: Option<&'a str>,
    pub merchant_id: &'a str,
    pub store_id: Option<&'a str>,
    /// `store_pay` or an order channel.
    pub channel: &'a str,
    pub currency: &'a str,
    /// What the coupon's rules measure: the bill (store-pay) or the order's subtotal less its
    /// other discounts.
    pub base: i64,
    /// Coupons already on the order (for the stacking rule).
    pub coupons_on_order: usize,
    /// The unit price of the template's free item on the order, if there.
    pub free_item_price: Option<&'a FreeItemPrice>,
}

/// A coupon that does not apply to a bill, and why (`reason`, kept for pages: see
/// `web::refusals`).
fn not_applicable(reason: &'static str, message: impl Into<String>) -> Error {
    Error::invalid("coupon_not_applicable", message)
        .param("coupon")
        .arg("reason", reason)
}

/// Checks a coupon against a bill and says what it takes off (at least one fen is left to pay).
pub(crate) fn quote(state: &State, coupon_id: &str, bill: &Bill<'_>) -> Result<i64> {
    let now = state.now;
    let c = state
        .coupons
        .coupons
        .get(coupon_id)
        .filter(|c| Some(c.user_id.as_str()) == bill.user_id)
        .ok_or_else(|| {
            Error::not_found("coupon_not_found", "No such coupon of yours.").param("coupon")
        })?;
    let t =
        state.coupons.templates.get(&c.template_id).ok_or_else(|| {
            Error::not_found("coupon_not_found", "No such coupon.").param("coupon")
        })?;
    match c.status_at(now) {
        "used" => {
            return Err(
                Error::conflict("coupon_used", "This coupon was used already.").param("coupon"),
            );
        }
        "expired" => {
            return Err(
                Error::conflict("coupon_expired", "This coupon has expired.").param("coupon"),
            );
        }
        _ => {}
    }
    if c.valid_from > now {
        return Err(not_applicable("not_yet", "This coupon cannot be used yet."));
    }
    if t.merchant_id != bill.merchant_id {
        return Err(not_applicable(
            "other_merchant",
            "This coupon is for another merchant.",
        ));
    }
    if t.currency != bill.currency {
        return Err(
            not_applicable("currency", format!("This coupon is in {}.", t.currency))
                .arg("currency", &t.currency),
        );
    }
    let stores = t.stores();
    if !stores.is_empty() && !bill.store_id.is_some_and(|s| stores.iter().any(|x| x == s)) {
        return Err(not_applicable(
            "store",
            "This coupon is not good at this store.",
        ));
    }
    let channels = t.channel_list();
    if !channels.is_empty() && !channels.iter().any(|x| x == bill.channel) {
        return Err(not_applicable(
            "channel",
            format!("This coupon is not good for {}.", bill.channel),
        ));
    }
    if bill.base < t.min_spend {
        let (min, base) = (
            o2o_ledger::shown_price(t.min_spend, &t.currency),
            o2o_ledger::shown_price(bill.base, bill.currency),
        );
        return Err(not_applicable(
            "min_spend",
            format!("This coupon needs a spend of at least {min} (this bill is {base})."),
        )
        .arg("min", min)
        .arg("base", base));
    }
    if bill.coupons_on_order > 0 && !t.stackable {
        return Err(Error::conflict(
            "coupon_not_stackable",
            "This order already has a coupon; this one cannot be combined.",
        )
        .param("coupon"));
    }
    let free = match (&t.product_id, bill.free_item_price) {
        (Some(p), Some(f)) if t.kind == "free_item" => f(p),
        _ => None,
    };
    if t.kind == "free_item" && free.is_none() {
        return Err(not_applicable(
            "free_item",
            "Add the free item to the order to use this coupon.",
        ));
    }
    let d = discount_of(t, bill.base, free).min(bill.base - 1).max(0);
    if d == 0 {
        return Err(not_applicable(
            "nothing_off",
            "This coupon takes nothing off this bill.",
        ));
    }
    Ok(d)
}

/// The label a discount shows on an order.
pub(crate) fn label(state: &State, coupon_id: &str) -> String {
    state
        .coupons
        .coupons
        .get(coupon_id)
        .and_then(|c| state.coupons.templates.get(&c.template_id))
        .map(|t| t.name.clone())
        .unwrap_or_else(|| "Coupon".into())
}

/// Marks a coupon used by a payment (after the payment's transfers applied).
pub(crate) fn mark_used(
    state: &mut State,
    coupon_id: &str,
    payment_id: &str,
    order_id: Option<&str>,
    discount: i64,
) {
    let now = state.now;
    if let Some(c) = state.coupons.coupons.get_mut(coupon_id) {
        c.status = "used".into();
        c.used_at = Some(now);
        c.payment_id = Some(payment_id.to_owned());
        c.order_id = order_id.map(str::to_owned);
        c.discount = discount;
        state.coupons.touch_coupon(coupon_id);
    }
}

/// Gives a coupon back (its payment was refunded in full).
pub(crate) fn restore(state: &mut State, coupon_id: &str) {
    if let Some(c) = state.coupons.coupons.get_mut(coupon_id) {
        c.status = "active".into();
        c.used_at = None;
        c.payment_id = None;
        c.order_id = None;
        c.discount = 0;
        state.coupons.touch_coupon(coupon_id);
    }
}

/// The coupon a payment command names, for loading.
pub(crate) fn coupon_of(p: &NewPayment) -> Option<&str> {
    p.coupon_id.as_deref()
}

/// Writes the batch's claims, uses and give-backs.
pub(crate) async fn flush(
    tx: &mut Tx,
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    let b = &state.coupons;
    if !b.changed_coupons.is_empty() {
        let rows: Vec<serde_json::Value> = b
            .changed_coupons
            .iter()
            .filter_map(|id| b.coupons.get(id))
            .map(CouponRow::json)
            .collect();
        store::upsert_coupons(tx, &rows).await?;
    }
    if !b.changed_templates.is_empty() {
        let rows: Vec<serde_json::Value> = b
            .changed_templates
            .iter()
            .filter_map(|id| b.templates.get(id))
            .map(|t| serde_json::json!({"id": t.id, "issued": t.issued}))
            .collect();
        store::set_issued(tx, &rows).await?;
    }
    Ok(())
}
