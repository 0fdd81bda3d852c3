//! Coupons' shapes and rules.

use crate::db::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/coupon-templates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub merchant_id: String,
    /// 1 to 80 characters.
    pub name: String,
    /// `amount_off`, `percent_off` or `free_item`.
    pub kind: String,
    /// amount_off: minor units off.
    pub amount_off: Option<i64>,
    /// percent_off: 1 to 99.
    pub percent_off: Option<i64>,
    /// percent_off: the most taken off, in minor units.
    pub max_discount: Option<i64>,
    /// free_item: the product given free (one unit of it on the order).
    pub product_id: Option<String>,
    /// The least the order or payment must come to (minor units, default 0).
    pub min_spend: Option<i64>,
    pub currency: String,
    /// The stores it is good at (default: all the merchant's stores).
    #[serde(default)]
    pub store_ids: Vec<String>,
    /// `dine_in`, `pickup`, `delivery`, `scan_and_go`, `store_pay` (default: all).
    #[serde(default)]
    pub channels: Vec<String>,
    /// RFC 3339 (default: now).
    pub claim_starts_at: Option<String>,
    pub claim_ends_at: Option<String>,
    pub use_starts_at: Option<String>,
    pub use_ends_at: Option<String>,
    /// Good for this many days after claiming (instead of, or within, the use window).
    pub valid_days_after_claim: Option<i64>,
    /// How many can be claimed in all (1 to 10,000,000).
    pub total_stock: i64,
    /// Default 1.
    pub per_consumer_limit: Option<i64>,
    /// `everyone` (default), `followers`, `members` or `tier:<name>`.
    pub audience: Option<String>,
    /// May be used with another coupon on one order (default false).
    pub stackable: Option<bool>,
    /// A price in member points (1 to 10,000,000): the coupon is not claimed free but exchanged
    /// for that many points from a member card of the merchant (积分兑换,
    /// `POST /v1/me/cards/{id}/exchanges`). Default: none, claimed free.
    pub points_price: Option<i64>,
}

/// A template as stored.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct TemplateRow {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub kind: String,
    pub amount_off: Option<i64>,
    pub percent_off: Option<i64>,
    pub max_discount: Option<i64>,
    pub product_id: Option<String>,
    pub min_spend: i64,
    pub currency: String,
    pub store_ids: String,
    pub channels: String,
    pub claim_starts_at: i64,
    pub claim_ends_at: Option<i64>,
    pub use_starts_at: Option<i64>,
    pub use_ends_at: Option<i64>,
    pub valid_days_after_claim: Option<i64>,
    pub total_stock: i64,
    pub issued: i64,
    pub per_consumer_limit: i64,
    pub audience: String,
    pub stackable: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub points_price: Option<i64>,
}

impl TemplateRow {
    pub fn stores(&self) -> Vec<String> {
        serde_json::from_str(&self.store_ids).unwrap_or_default()
    }

    pub fn channel_list(&self) -> Vec<String> {
        serde_json::from_str(&self.channels).unwrap_or_default()
    }

    pub fn public(&self) -> Template {
        let t = |v: Option<i64>| v.map(rfc3339);
        Template {
            id: self.id.clone(),
            merchant_id: self.merchant_id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            amount_off: self.amount_off,
            percent_off: self.percent_off,
            max_discount: self.max_discount,
            product_id: self.product_id.clone(),
            min_spend: self.min_spend,
            currency: self.currency.clone(),
            store_ids: self.stores(),
            channels: self.channel_list(),
            claim_starts_at: rfc3339(self.claim_starts_at),
            claim_ends_at: t(self.claim_ends_at),
            use_starts_at: t(self.use_starts_at),
            use_ends_at: t(self.use_ends_at),
            valid_days_after_claim: self.valid_days_after_claim,
            total_stock: self.total_stock,
            issued: self.issued,
            remaining: (self.total_stock - self.issued).max(0),
            per_consumer_limit: self.per_consumer_limit,
            audience: self.audience.clone(),
            stackable: self.stackable,
            points_price: self.points_price,
            created_at: rfc3339(self.created_at),
        }
    }
}

/// A coupon template.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Template {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub kind: String,
    pub amount_off: Option<i64>,
    pub percent_off: Option<i64>,
    pub max_discount: Option<i64>,
    pub product_id: Option<String>,
    pub min_spend: i64,
    pub currency: String,
    pub store_ids: Vec<String>,
    pub channels: Vec<String>,
    pub claim_starts_at: String,
    pub claim_ends_at: Option<String>,
    pub use_starts_at: Option<String>,
    pub use_ends_at: Option<String>,
    pub valid_days_after_claim: Option<i64>,
    pub total_stock: i64,
    pub issued: i64,
    pub remaining: i64,
    pub per_consumer_limit: i64,
    pub audience: String,
    pub stackable: bool,
    /// Member points one coupon costs (exchanged from a member card, not claimed free); `null`
    /// for a coupon claimed free.
    pub points_price: Option<i64>,
    pub created_at: String,
}

/// A claimed coupon as stored.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct CouponRow {
    pub id: String,
    pub template_id: String,
    pub merchant_id: String,
    pub user_id: String,
    pub status: String,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub claimed_via: String,
    pub claimed_at: i64,
    pub used_at: Option<i64>,
    pub payment_id: Option<String>,
    pub order_id: Option<String>,
    pub discount: i64,
}

impl CouponRow {
    /// `active`, `used` or `expired` (an active coupon past its use window).
    pub fn status_at(&self, now: i64) -> &'static str {
        match self.status.as_str() {
            "used" => "used",
            _ if self.valid_until.is_some_and(|t| t <= now) => "expired",
            _ => "active",
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "template_id": self.template_id, "merchant_id": self.merchant_id,
            "user_id": self.user_id, "status": self.status, "valid_from": self.valid_from,
            "valid_until": self.valid_until, "claimed_via": self.claimed_via, "claimed_at": self.claimed_at,
            "used_at": self.used_at, "payment_id": self.payment_id, "order_id": self.order_id,
            "discount": self.discount,
        })
    }

    pub fn public(&self, t: &TemplateRow, now: i64) -> Coupon {
        Coupon {
            id: self.id.clone(),
            template: t.public(),
            status: self.status_at(now),
            valid_from: rfc3339(self.valid_from),
            valid_until: self.valid_until.map(rfc3339),
            claimed_at: rfc3339(self.claimed_at),
            used_at: self.used_at.map(rfc3339),
            payment_id: self.payment_id.clone(),
            order_id: self.order_id.clone(),
            discount: self.discount,
        }
    }
}

/// A coupon a consumer holds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Coupon {
    pub id: String,
    pub template: Template,
    /// `active`, `used` or `expired`.
    pub status: &'static str,
    pub valid_from: String,
    pub valid_until: Option<String>,
    pub claimed_at: String,
    pub used_at: Option<String>,
    pub payment_id: Option<String>,
    pub order_id: Option<String>,
    /// What it took off when used.
    pub discount: i64,
}

/// A template's results for its merchant.
#[derive(Serialize, ToSchema)]
pub struct TemplateStats {
    pub template: Template,
    pub issued: i64,
    pub used: i64,
    pub expired: i64,
    /// Minor units taken off by used coupons (what the campaign cost).
    pub discount_given: i64,
    /// What the consumers paid with the coupon.
    pub sales: i64,
}

/// A template in the coupon center, with why it is shown where it is.
#[derive(Serialize, ToSchema)]
pub struct Offer {
    pub template: Template,
    pub merchant_name: String,
    /// The nearest of its stores and how far it is.
    pub store_id: String,
    pub distance_m: u32,
    /// The consumer has paid this merchant before.
    pub shopped_here: bool,
    /// The consumer may still claim it (in stock and under their limit).
    pub claimable: bool,
    /// Every coupon of it has been claimed: shown so a consumer who saw it elsewhere knows why
    /// it cannot be claimed (listed after the claimable ones).
    pub sold_out: bool,
}

/// A coupon a member may exchange points for, as a member card lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExchangeOffer {
    pub template: Template,
    /// Its price in points (the template's `points_price`).
    pub points_price: i64,
    /// Every coupon of it has been issued.
    pub sold_out: bool,
    /// How many of it the member holds (used or not) against its `per_consumer_limit`.
    pub held: i64,
    /// The member may exchange for one now: in stock, under the limit, enough points.
    pub exchangeable: bool,
}

/// What using a coupon takes off a bill of `base` (minor units) whose lines include `free`
/// (the unit price of the template's free item, when present).
pub fn discount_of(t: &TemplateRow, base: i64, free_item_price: Option<i64>) -> i64 {
    let d = match t.kind.as_str() {
        "amount_off" => t.amount_off.unwrap_or(0),
        "percent_off" => {
            let pct = t.percent_off.unwrap_or(0);
            // Rounded down to the fen: the consumer never gets more than the stated percent.
            let raw = i64::try_from(i128::from(base) * i128::from(pct) / 100).unwrap_or(0);
            match t.max_discount {
                Some(cap) => raw.min(cap),
                None => raw,
            }
        }
        "free_item" => free_item_price.unwrap_or(0),
        _ => 0,
    };
    d.clamp(0, base.max(0))
}
