//! Members' shapes: the program a merchant runs, the cards consumers hold, their movements.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A top-up bonus rule: topping up at least `min_top_up` adds `bonus` (both in minor units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBonus {
    pub min_top_up: i64,
    pub bonus: i64,
}

/// A tier reached by spending at least `min_spend` (minor units) with the card in the last 12
/// months. `percent_off` comes off payments made with the card while it is in this tier.
/// `coupon_template_id` names one of the merchant's coupon templates: a card that moves up into
/// this tier gets one coupon of it (its stock and per-consumer limit hold; none when sold out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    pub min_spend: i64,
    pub percent_off: i64,
    #[serde(default)]
    pub coupon_template_id: Option<String>,
}

/// `PUT /v1/member-programs/{merchant_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProgram {
    /// ISO 4217, default CNY. Fixed once the first card is opened.
    pub currency: Option<String>,
    /// At most 10 rules; the highest `min_top_up` reached applies.
    #[serde(default)]
    pub top_up_bonuses: Vec<TopUpBonus>,
    /// Points per yuan (100 minor units) paid from a card's paid part, 0–100.
    #[serde(default)]
    pub points_per_yuan: i64,
    /// At most 10 tiers; the highest `min_spend` reached applies.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// One of the merchant's coupon templates, given to each member once a year on their
    /// birthday (the month-day on their profile, in the merchant's time zone).
    pub birthday_coupon_template_id: Option<String>,
}

/// A merchant's member program.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Program {
    pub merchant_id: String,
    pub currency: String,
    pub top_up_bonuses: Vec<TopUpBonus>,
    pub points_per_yuan: i64,
    pub tiers: Vec<Tier>,
    /// The coupon template given on members' birthdays.
    pub birthday_coupon_template_id: Option<String>,
    /// The merchant's promotion budget, which pays the top-up bonuses (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bonus_budget: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl Program {
    /// The bonus a top-up of `amount` earns: the rule with the highest `min_top_up` reached.
    pub fn bonus_for(&self, amount: i64) -> i64 {
        self.top_up_bonuses
            .iter()
            .filter(|b| b.min_top_up <= amount)
            .map(|b| b.bonus)
            .max()
            .unwrap_or(0)
    }

    /// The tier a 12-month spend reaches, if any.
    pub fn tier_for(&self, spend: i64) -> Option<&Tier> {
        self.tiers
            .iter()
            .filter(|t| t.min_spend <= spend)
            .max_by_key(|t| t.min_spend)
    }

    /// Points earned by paying `paid` minor units from a card's paid part (rounded down).
    pub fn points_for(&self, paid: i64) -> i64 {
        i64::try_from(i128::from(paid.max(0)) * i128::from(self.points_per_yuan) / 100).unwrap_or(0)
    }
}

/// A program as stored.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ProgramRow {
    pub merchant_id: String,
    pub currency: String,
    pub top_up_bonuses: String,
    pub points_per_yuan: i64,
    pub tiers: String,
    pub birthday_coupon_template_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ProgramRow {
    pub fn program(&self) -> Program {
        Program {
            merchant_id: self.merchant_id.clone(),
            currency: self.currency.clone(),
            top_up_bonuses: serde_json::from_str(&self.top_up_bonuses).unwrap_or_default(),
            points_per_yuan: self.points_per_yuan,
            tiers: serde_json::from_str(&self.tiers).unwrap_or_default(),
            birthday_coupon_template_id: self.birthday_coupon_template_id.clone(),
            bonus_budget: None,
            created_at: crate::db::rfc3339(self.created_at),
            updated_at: crate::db::rfc3339(self.updated_at),
        }
    }
}

/// A card as stored.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct CardRow {
    pub id: String,
    pub merchant_id: String,
    pub user_id: String,
    pub currency: String,
    pub status: String,
    pub points: i64,
    pub tier: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// `POST /v1/me/cards`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinProgram {
    pub merchant_id: String,
}

/// `POST /v1/me/cards/{id}/top-ups` and `POST /v1/member-programs/{id}/budget-top-ups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardTopUp {
    /// Minor units, positive, at most 5,000,000 (¥50,000).
    pub amount: i64,
    pub currency: String,
}

/// `POST /v1/member-programs/{id}/budget-top-ups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetTopUp {
    pub amount: i64,
    pub currency: String,
    /// `bank` (default: paid in through the payment provider) or `available` (from the
    /// merchant's settled balance).
    pub source: Option<String>,
}

/// `POST /v1/me/cards/{id}/exchanges`: points for one coupon (积分兑换).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeInput {
    /// A template of the card's merchant that carries a `points_price` (`cpt_…`).
    pub coupon_template_id: String,
}

/// A card's points after an exchange.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CardPoints {
    pub id: String,
    /// The points left on the card.
    pub points: i64,
    pub tier: Option<String>,
}

/// What a points exchange did: the card movement (`cmv_…`, kind `exchange`), the points it
/// took, the card's points now and the coupon issued.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PointsExchanged {
    pub id: String,
    pub points_spent: i64,
    pub card: CardPoints,
    pub coupon: crate::marketing::model::Coupon,
}

/// One movement of a card, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CardMovement {
    pub id: String,
    /// `top_up`, `payment`, `refund`, `close`, or `exchange` (points for a coupon; `reference`
    /// is the coupon).
    pub kind: String,
    /// Signed change of the paid balance.
    pub paid: i64,
    /// Signed change of the bonus balance.
    pub bonus: i64,
    /// Signed change of the points.
    pub points: i64,
    pub payment_id: Option<String>,
    pub reference: String,
    pub created_at: String,
}

/// A member card.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Card {
    pub id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub currency: String,
    /// `active` or `closed`.
    pub status: String,
    /// The paid part: what the consumer topped up and has not spent (refundable at closing).
    pub balance: i64,
    /// The bonus part: what the merchant added (spent after the paid part; forfeited at closing).
    pub bonus_balance: i64,
    /// `balance + bonus_balance`: what can be spent.
    pub spendable: i64,
    pub points: i64,
    pub tier: Option<String>,
    /// Spent with the card in the last 12 months (what the tier is measured on).
    pub spend_12m: i64,
    pub created_at: String,
    pub closed_at: Option<String>,
    /// The latest movements (in `GET /v1/me/cards/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movements: Option<Vec<CardMovement>>,
    /// The tier's benefits and the next tier (in `GET /v1/me/cards` and `GET /v1/me/cards/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_benefits: Option<TierBenefits>,
}

/// The coupon a tier gives on moving up into it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UpgradeCoupon {
    pub template_id: String,
    pub name: String,
}

/// The next tier up from a card's, and what reaching it takes and gives.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NextTier {
    pub name: String,
    /// The 12-month spend it starts at (minor units).
    pub min_spend: i64,
    /// What the card still has to spend to reach it (minor units).
    pub spend_needed: i64,
    pub percent_off: i64,
    /// The coupon given on moving up into it, if the tier names one.
    pub upgrade_coupon: Option<UpgradeCoupon>,
}

/// What a card's tier gives now and what the next tier would.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TierBenefits {
    /// The current tier's percent off card payments (0 without a tier).
    pub percent_off: i64,
    /// `null` at the top tier (or in a program without tiers).
    pub next_tier: Option<NextTier>,
}
