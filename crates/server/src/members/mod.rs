//! Members: a merchant's member program and the stored-value cards consumers hold with it.
//!
//! - A **program** (one per merchant): top-up bonus rules (`{min_top_up, bonus}`: top up ¥100,
//!   get ¥10), points per yuan paid, and tiers by what was spent with the card in the last 12
//!   months (`{name, min_spend, percent_off}`).
//! - A **card** (`crd_…`, one per consumer per merchant) holds two ledger accounts: the *paid
//!   part* (`accounts::card`, money the consumer moved in from the wallet) and the *bonus part*
//!   (`accounts::card_bonus`, money the merchant added). Both may not go negative. They are
//!   created with the card row in one transaction; the payments engine never creates them.
//! - **Bonuses are funded, never created**: they come from the merchant's promotion budget
//!   (`accounts::merchant_promotion`), which the owner tops up from the bank or from the
//!   available balance (`POST /v1/member-programs/{id}/budget-top-ups`). A top-up whose bonus
//!   the budget cannot pay from what it holds is refused (`402 bonus_budget_insufficient`) and
//!   nothing moves. Coupons are paid from the same budget (and may take it below zero, restored
//!   from collected money at settlement), so a bonus never spends coupon debt.
//! - **Paying** with a card (`source: "crd_…"`, scanning a store's code or for an order) spends
//!   the paid part first, then the bonus. **Refunds** go back in the payment's proportions (the
//!   bonus share rounded down), so a refund never turns bonus into cash; refunds to a closed card
//!   go to the wallet (paid share) and the promotion budget (bonus share). **Closing** a card
//!   returns the paid part to the wallet and forfeits the bonus to the promotion budget.
//! - **Points** are earned on the paid part only (bonus money earns none), `points_per_yuan` per
//!   100 minor units, rounded down, and taken back in proportion by refunds, even when already
//!   spent on coupons: the card's points then go below zero (a debt later earnings pay off), so
//!   its movements always add up to its points. The **tier** is
//!   re-evaluated at each card payment or refund from the last 12 months' card spend (paid plus
//!   bonus, less refunds); a change is an outbox event `member.tier_changed` (`card_id`,
//!   `consumer_id`, `from`, `to`, `coupon_id`).
//! - **Benefits.** Holding an open card puts a consumer in the `members` audience of coupons and
//!   messages, and in `tier:<name>` for the card's tier. A tier may name a coupon template: a card
//!   moving up into it gets one coupon, issued in the batch of the payment that moved it (stock,
//!   claim window and per-consumer limit hold; none when refused, the payment still goes
//!   through). A tier's `percent_off` cuts payments made with the card (see
//!   [`engine::tier_discount`]: on what is owed after any coupon, rounded down; the merchant's own
//!   price cut, so the consumer is charged less and the merchant receives what was charged). A
//!   program may name a birthday coupon template: [`service::birthday_sweep`] gives it once a
//!   year to each member on the birthday on their profile, in the merchant's time zone.
//! - **Spending points** (积分兑换): a coupon template may carry a `points_price`. A member
//!   exchanges that many points from their card for one coupon of it ([`service::exchange`]): one
//!   sequencer command ([`engine::MemberOp::Exchange`]) that checks the card's points, issues the
//!   coupon through the claim path (stock, limit, claim window; the audience is checked before,
//!   as for a claim) and records a card movement of kind `exchange` (`points` negative,
//!   `reference` the coupon) and an outbox event `member.points_exchanged` (`card_id`,
//!   `consumer_id`, `coupon_id`, `coupon_template_id`, `points`), all in the batch's transaction
//!   or not at all.
//!
//! Not done yet: card payments with `capture: manual` (refused with
//! `card_capture_manual_unsupported`); a merchant-side list of members and a merchant-initiated
//! closing; withdrawing an unused promotion budget.

pub mod api;
pub mod engine;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
pub mod texts;
