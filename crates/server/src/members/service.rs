//! Members' rules: what a program may say, who may join, top up, close and read a card. Every
//! movement of a card's money is a command for the sequencer ([`super::engine`]); opening a card
//! is not a movement, so it happens here, in one transaction with the card's two accounts.

use super::engine::{Funding, MemberOp};
use super::model::*;
use super::store;
use crate::app::AppState;
use crate::db::{Db, DbError, MerchantScope, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::http::Reply;
use crate::identity::Principal;
use crate::ids::{CardId, CardMovementId, CouponTemplateId, PromotionFundingId};
use crate::payments::accounts;
use crate::payments::engine::{IdemKey, Op};
use crate::payments::provider::{ChargeRequest, ChargeStatus, Direction};
use crate::payments::service::{MAX_WALLET_MOVE, parse_amount, parse_currency};

/// Bonus rules and tiers a program may have at most.
pub const MAX_RULES: usize = 10;
/// The most points per yuan a program may give.
pub const MAX_POINTS_PER_YUAN: i64 = 100;
/// The most percent off a tier may record.
pub const MAX_PERCENT_OFF: i64 = 50;
/// Movements shown with a card.
pub const HISTORY: i64 = 50;
/// Cards listed at most (one per merchant).
pub const MAX_CARDS: i64 = 100;

fn program_not_found() -> Error {
    Error::not_found("program_not_found", "This merchant runs no member program.")
        .param("merchant_id")
}

fn card_not_found() -> Error {
    Error::not_found("card_not_found", "No such member card.").param("id")
}

/// Checks and stores the scoped merchant's program.
pub async fn put_program(db: &Db, scope: &MerchantScope, input: PutProgram) -> Result<Program> {
    let currency = parse_currency(input.currency.as_deref().unwrap_or("CNY"))?;
    if input.top_up_bonuses.len() > MAX_RULES {
        return Err(Error::invalid(
            "too_many_rules",
            format!("At most {MAX_RULES} top-up bonus rules."),
        )
        .param("top_up_bonuses"));
    }
    let mut bonuses = input.top_up_bonuses;
    for b in &bonuses {
        if b.min_top_up <= 0 || b.min_top_up > MAX_WALLET_MOVE {
            return Err(Error::invalid(
                "min_top_up_invalid",
                format!("min_top_up must be between 1 and {MAX_WALLET_MOVE} minor units."),
            )
            .param("top_up_bonuses"));
        }
        if b.bonus <= 0 || b.bonus > b.min_top_up {
            return Err(Error::invalid(
                "bonus_invalid",
                "bonus must be positive and at most its min_top_up.",
            )
            .param("top_up_bonuses"));
        }
    }
    bonuses.sort_by_key(|b| b.min_top_up);
    if bonuses
        .windows(2)
        .any(|w| w[0].min_top_up == w[1].min_top_up)
    {
        return Err(Error::invalid(
            "min_top_up_duplicate",
            "Each bonus rule needs its own min_top_up.",
        )
        .param("top_up_bonuses"));
    }
    if !(0..=MAX_POINTS_PER_YUAN).contains(&input.points_per_yuan) {
        return Err(Error::invalid(
            "points_per_yuan_invalid",
            format!("points_per_yuan must be between 0 and {MAX_POINTS_PER_YUAN}."),
        )
        .param("points_per_yuan"));
    }
    if input.tiers.len() > MAX_RULES {
        return Err(
            Error::invalid("too_many_rules", format!("At most {MAX_RULES} tiers.")).param("tiers"),
        );
    }
    let mut tiers = input.tiers;
    for t in &mut tiers {
        t.name = t.name.trim().to_owned();
        let n = t.name.chars().count();
        if n == 0 || n > 32 || t.name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "tier_name_invalid",
                "A tier's name must be 1 to 32 characters.",
            )
            .param("tiers"));
        }
        if !(0..=1_000_000_000_000).contains(&t.min_spend) {
            return Err(Error::invalid(
                "min_spend_invalid",
                "min_spend must be zero or a positive number of minor units.",
            )
            .param("tiers"));
        }
        if !(0..=MAX_PERCENT_OFF).contains(&t.percent_off) {
            return Err(Error::invalid(
                "percent_off_invalid",
                format!("percent_off must be between 0 and {MAX_PERCENT_OFF}."),
            )
            .param("tiers"));
        }
    }
    for t in &mut tiers {
        if let Some(id) = t.coupon_template_id.take() {
            let id = id.trim().to_owned();
            if !id.is_empty() {
                crate::marketing::service::check_own_template(db, scope, &id, currency.code())
                    .await
                    .map_err(|e| e.param("tiers"))?;
                t.coupon_template_id = Some(id);
            }
        }
    }
    let birthday_coupon_template_id = match input
        .birthday_coupon_template_id
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
    {
        Some(id) => {
            crate::marketing::service::check_own_template(db, scope, &id, currency.code())
                .await
                .map_err(|e| e.param("birthday_coupon_template_id"))?;
            Some(id)
        }
        None => None,
    };
    tiers.sort_by_key(|t| t.min_spend);
    if tiers.windows(2).any(|w| w[0].min_spend == w[1].min_spend)
        || tiers
            .iter()
            .enumerate()
            .any(|(i, t)| tiers[..i].iter().any(|u| u.name == t.name))
    {
        return Err(Error::invalid(
            "tier_duplicate",
            "Each tier needs its own name and min_spend.",
        )
        .param("tiers"));
    }
    if let Some(existing) = store::program(db, scope.merchant_id()).await?
        && existing.currency != currency.code()
        && store::card_count(db, scope.merchant_id()).await? > 0
    {
        return Err(Error::conflict(
            "program_currency_locked",
            "Members hold cards in this program's currency; it cannot change.",
        )
        .param("currency"));
    }
    store::put_program(
        db,
        scope,
        currency.code(),
        serde_json::to_string(&bonuses).map_err(Error::internal)?,
        input.points_per_yuan,
        serde_json::to_string(&tiers).map_err(Error::internal)?,
        birthday_coupon_template_id,
        now_us(),
    )
    .await?;
    program_for_staff(db, scope)
        .await?
        .ok_or_else(program_not_found)
}

/// The scoped merchant's program with its bonus budget.
pub async fn program_for_staff(db: &Db, scope: &MerchantScope) -> Result<Option<Program>> {
    let Some(row) = store::program(db, scope.merchant_id()).await? else {
        return Ok(None);
    };
    let mut p = row.program();
    let c = parse_currency(&p.currency)?;
    p.bonus_budget =
        Some(store::available(db, &accounts::merchant_promotion(scope.merchant_id(), c).id).await?);
    Ok(Some(p))
}

/// A merchant's program as consumers see it (no budget).
pub async fn program(db: &Db, merchant_id: &str) -> Result<Option<Program>> {
    Ok(store::program(db, merchant_id).await?.map(|r| r.program()))
}

/// Joins a merchant's program: opens the consumer's card (with its accounts) or returns the one
/// they hold, reopening it if it was closed. `201` for a new card, `200` otherwise; joining is
/// idempotent by nature (one card per consumer per merchant, enforced by a unique key).
pub async fn join(app: &AppState, user_id: &str, input: JoinProgram) -> Result<Reply> {
    let merchant_id = input.merchant_id.trim().to_owned();
    if merchant_id.len() > 64 {
        return Err(program_not_found());
    }
    let Some(program) = store::program(&app.db, &merchant_id).await? else {
        return Err(program_not_found());
    };
    let currency = parse_currency(&program.currency)?;
    let now = now_us();
    let mut tx = app.db.begin().await?;
    let (card_id, created) = match store::card_of(&mut tx, user_id, &merchant_id).await? {
        Some(card) => {
            if card.status == "closed" {
                store::reopen(&mut tx, &card.id, now).await?;
            }
            (card.id, false)
        }
        None => {
            let id = CardId::generate().as_str().to_owned();
            let row = CardRow {
                id: id.clone(),
                merchant_id: merchant_id.clone(),
                user_id: user_id.to_owned(),
                currency: currency.code().to_owned(),
                status: "active".into(),
                points: 0,
                tier: None,
                created_at: now,
                updated_at: now,
                closed_at: None,
            };
            let specs = [
                accounts::card(&id, currency),
                accounts::card_bonus(&id, currency),
            ];
            match store::insert_card(&mut tx, &row, &specs).await {
                Ok(()) => (id, true),
                Err(e) => {
                    drop(tx);
                    return joined_meanwhile(app, user_id, &merchant_id, e).await;
                }
            }
        }
    };
    if let Err(e) = tx.commit().await {
        return joined_meanwhile(app, user_id, &merchant_id, e).await;
    }
    let card = store::card(&app.db, &card_id)
        .await?
        .ok_or_else(card_not_found)?;
    let view = card_view(&app.db, card, false).await?;
    if created {
        Reply::created(&view)
    } else {
        Reply::ok(&view)
    }
}

/// Two first joins racing: the loser's insert conflicts on the unique key; the winner's card is
/// the consumer's card.
async fn joined_meanwhile(
    app: &AppState,
    user_id: &str,
    merchant_id: &str,
    err: DbError,
) -> Result<Reply> {
    if !matches!(err, DbError::Conflict { .. }) {
        return Err(err.into());
    }
    let card = store::card_at(&app.db, user_id, merchant_id)
        .await?
        .ok_or_else(|| Error::from(err))?;
    Reply::ok(&card_view(&app.db, card, false).await?)
}

/// A card with its balances (and its latest movements when `history`).
pub async fn card_view(db: &Db, card: CardRow, history: bool) -> Result<Card> {
    let c = parse_currency(&card.currency)?;
    let balance = store::available(db, &accounts::card(&card.id, c).id).await?;
    let bonus_balance = store::available(db, &accounts::card_bonus(&card.id, c).id).await?;
    let spend_12m =
        store::spend_since(db, &card.id, now_us() - super::engine::TIER_WINDOW_US).await?;
    let movements = if history {
        Some(
            store::movements(db, &card.id, HISTORY)
                .await?
                .into_iter()
                .map(|m| CardMovement {
                    id: m.id,
                    kind: m.kind,
                    paid: m.paid,
                    bonus: m.bonus,
                    points: m.points,
                    payment_id: m.payment_id,
                    reference: m.reference,
                    created_at: rfc3339(m.created_at),
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(Card {
        merchant_name: store::merchant_name(db, &card.merchant_id)
            .await?
            .unwrap_or_default(),
        id: card.id,
        merchant_id: card.merchant_id,
        currency: card.currency,
        status: card.status,
        balance,
        bonus_balance,
        spendable: balance + bonus_balance,
        points: card.points,
        tier: card.tier,
        spend_12m,
        created_at: rfc3339(card.created_at),
        closed_at: card.closed_at.map(rfc3339),
        movements,
        tier_benefits: None,
    })
}

/// The consumer's cards, each with its tier's benefits. The programs of the cards' merchants
/// and the names of their upgrade coupons are loaded once for the whole list.
pub async fn my_cards(db: &Db, user_id: &str) -> Result<Vec<Card>> {
    let mut out = Vec::new();
    for row in store::cards_of_user(db, user_id, MAX_CARDS).await? {
        out.push(card_view(db, row, false).await?);
    }
    fill_tier_benefits(db, &mut out).await?;
    Ok(out)
}

/// One of the consumer's cards with its history and its tier's benefits; another consumer's
/// card is not found.
pub async fn my_card(app: &AppState, user_id: &str, card_id: &str) -> Result<Card> {
    let card = own_card(&app.db, user_id, card_id).await?;
    let mut card = card_view(&app.db, card, true).await?;
    fill_tier_benefits(&app.db, std::slice::from_mut(&mut card)).await?;
    Ok(card)
}

/// Sets the tier benefits of each of `cards` (the current tier's percent off, the next tier up,
/// the spend still needed to reach it over the tier's 12 months, the coupon given on moving up),
/// with one query for their merchants' programs and one for the upgrade coupons' names.
async fn fill_tier_benefits(db: &Db, cards: &mut [Card]) -> Result<()> {
    if cards.is_empty() {
        return Ok(());
    }
    let mut merchants: Vec<&str> = cards.iter().map(|c| c.merchant_id.as_str()).collect();
    merchants.sort_unstable();
    merchants.dedup();
    let merchants = serde_json::to_string(&merchants).map_err(Error::internal)?;
    let programs: std::collections::HashMap<String, Program> = store::programs_of(db, merchants)
        .await?
        .into_iter()
        .map(|r| (r.merchant_id.clone(), r.program()))
        .collect();
    let tiers_of = |card: &Card| {
        programs
            .get(&card.merchant_id)
            .map_or(&[][..], |p| p.tiers.as_slice())
    };
    let mut coupons: Vec<&str> = cards
        .iter()
        .filter_map(|c| next_tier(tiers_of(c), c.tier.as_deref()))
        .filter_map(|t| t.coupon_template_id.as_deref())
        .collect();
    coupons.sort_unstable();
    coupons.dedup();
    let names = crate::marketing::service::template_names(db, &coupons).await?;
    let benefits: Vec<TierBenefits> = cards
        .iter()
        .map(|c| benefits_of(tiers_of(c), c, |id| names.get(id).cloned()))
        .collect();
    for (card, b) in cards.iter_mut().zip(benefits) {
        card.tier_benefits = Some(b);
    }
    Ok(())
}

/// The consumer's active card at a merchant, if any (for the pay page).
pub async fn active_card_at(db: &Db, user_id: &str, merchant_id: &str) -> Result<Option<Card>> {
    match store::card_at(db, user_id, merchant_id).await? {
        Some(c) if c.status == "active" => Ok(Some(card_view(db, c, false).await?)),
        _ => Ok(None),
    }
}

/// The card `card_id` if it is `user_id`'s; else `404 card_not_found` (another's card is not
/// told apart from none).
pub(crate) async fn own_card(db: &Db, user_id: &str, card_id: &str) -> Result<CardRow> {
    if card_id.len() > 64 {
        return Err(card_not_found());
    }
    store::card(db, card_id)
        .await?
        .filter(|c| c.user_id == user_id)
        .ok_or_else(card_not_found)
}

fn idem(scope: &str, key: Option<String>, hash: String) -> Option<IdemKey> {
    key.map(|key| IdemKey {
        scope: scope.to_owned(),
        key,
        hash,
    })
}

/// Tops up a card from the consumer's wallet, with the program's bonus.
pub async fn top_up(
    app: &AppState,
    user_id: &str,
    card_id: &str,
    input: CardTopUp,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let amount = parse_amount(input.amount, MAX_WALLET_MOVE)?;
    let currency = parse_currency(&input.currency)?;
    let card = own_card(&app.db, user_id, card_id).await?;
    let op = MemberOp::TopUp {
        movement_id: CardMovementId::generate().as_str().to_owned(),
        card_id: card.id,
        user_id: user_id.to_owned(),
        merchant_id: card.merchant_id,
        amount,
        currency,
    };
    app.payments
        .run(
            Op::Member(Box::new(op)),
            idem(user_id, key, format!("card_top_up:{card_id}:{body_hash}")),
        )
        .await
}

/// Closes a card: the unspent paid part back to the wallet, the bonus forfeited.
pub async fn close(
    app: &AppState,
    user_id: &str,
    card_id: &str,
    key: Option<String>,
) -> Result<Reply> {
    let card = own_card(&app.db, user_id, card_id).await?;
    let currency = parse_currency(&card.currency)?;
    let op = MemberOp::Close {
        movement_id: CardMovementId::generate().as_str().to_owned(),
        card_id: card.id,
        user_id: user_id.to_owned(),
        merchant_id: card.merchant_id,
        currency,
    };
    app.payments
        .run(
            Op::Member(Box::new(op)),
            idem(user_id, key, format!("card_close:{card_id}")),
        )
        .await
}

/// Exchanges the card's points for one coupon of a template its merchant priced in points
/// (积分兑换). Refusals change nothing: a card not the caller's is `404 card_not_found`, a
/// template claimed free or of another merchant `409 coupon_not_exchangeable`, too few points
/// `409 points_insufficient`, and the claim's own refusals hold (`409 coupon_sold_out`,
/// `coupon_limit_reached`, `coupon_not_claimable`, `403 coupon_not_eligible`).
pub async fn exchange(
    app: &AppState,
    principal: &Principal,
    card_id: &str,
    input: ExchangeInput,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    if principal.guest {
        return Err(Error::forbidden(
            "phone_login_required",
            "Log in with your phone to exchange points.",
        ));
    }
    let hash = format!("card_exchange:{card_id}:{body_hash}");
    // A retry answers as the first request did, before any refusal made outside the sequencer.
    if let Some(reply) =
        crate::http::idempotency::lookup(&app.db, &principal.id, key.as_deref(), &hash).await?
    {
        return Ok(reply);
    }
    let card = own_card(&app.db, &principal.id, card_id).await?;
    let template_id = CouponTemplateId::parse(input.coupon_template_id.trim())
        .map_err(|_| {
            Error::invalid(
                "coupon_template_id_invalid",
                "coupon_template_id must be a coupon template id (cpt_…).",
            )
            .param("coupon_template_id")
        })?
        .as_str()
        .to_owned();
    let claim = crate::marketing::service::exchange_claim(
        app,
        &principal.id,
        &template_id,
        &card.merchant_id,
        key.is_some(),
    )
    .await?;
    let op = MemberOp::Exchange {
        movement_id: CardMovementId::generate().as_str().to_owned(),
        card_id: card.id,
        claim,
    };
    app.payments
        .run(Op::Member(Box::new(op)), idem(&principal.id, key, hash))
        .await
}

/// The coupons the points of one of the consumer's cards can be exchanged for (none on a
/// closed card).
pub async fn exchange_offers(
    app: &AppState,
    user_id: &str,
    card_id: &str,
) -> Result<Vec<crate::marketing::model::ExchangeOffer>> {
    let card = own_card(&app.db, user_id, card_id).await?;
    if card.status != "active" {
        return Ok(Vec::new());
    }
    crate::marketing::service::exchange_offers(app, user_id, &card.merchant_id, card.points).await
}

/// The tier above the one named `current` (the lowest tier for a card without one).
fn next_tier<'a>(tiers: &'a [Tier], current: Option<&str>) -> Option<&'a Tier> {
    let floor = current
        .and_then(|name| tiers.iter().find(|t| t.name == name))
        .map_or(i64::MIN, |t| t.min_spend);
    tiers
        .iter()
        .filter(|t| t.min_spend > floor)
        .min_by_key(|t| t.min_spend)
}

/// A card's tier benefits from its program's tiers; `coupon_name` names an upgrade coupon's
/// template (`None` when it no longer exists).
fn benefits_of(
    tiers: &[Tier],
    card: &Card,
    coupon_name: impl Fn(&str) -> Option<String>,
) -> TierBenefits {
    let current = card
        .tier
        .as_deref()
        .and_then(|name| tiers.iter().find(|t| t.name == name));
    let next = next_tier(tiers, card.tier.as_deref());
    TierBenefits {
        percent_off: current.map_or(0, |t| t.percent_off),
        next_tier: next.map(|t| NextTier {
            name: t.name.clone(),
            min_spend: t.min_spend,
            spend_needed: (t.min_spend - card.spend_12m).max(0),
            percent_off: t.percent_off,
            upgrade_coupon: t.coupon_template_id.as_deref().and_then(|id| {
                coupon_name(id).map(|name| UpgradeCoupon {
                    template_id: id.to_owned(),
                    name,
                })
            }),
        }),
    }
}

/// Funds the scoped merchant's promotion budget (which pays top-up bonuses), from the bank
/// through the payment provider or from the merchant's available balance.
pub async fn fund_budget(
    app: &AppState,
    scope: &MerchantScope,
    input: BudgetTopUp,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let amount = parse_amount(input.amount, MAX_WALLET_MOVE)?;
    let currency = parse_currency(&input.currency)?;
    let mut funding_id = PromotionFundingId::generate().as_str().to_owned();
    let merchant_id = scope.merchant_id().to_owned();
    let hash = format!("promotion_funding:{body_hash}");
    // A retried request must not charge the bank twice: answer it from its stored reply, once
    // any copy of it in progress on this node has finished (and stored it). Another request
    // under the key is then refused before the bank is asked.
    let _held = app.provider_keys.hold(&merchant_id, key.as_deref()).await;
    if let Some(reply) =
        crate::http::idempotency::lookup(&app.db, &merchant_id, key.as_deref(), &hash).await?
    {
        return Ok(reply);
    }
    let from = match input.source.as_deref() {
        None | Some("bank") => {
            let charge = crate::payments::service::charge_bank(
                app,
                &merchant_id,
                key.as_deref(),
                ChargeRequest {
                    reference: funding_id.clone(),
                    account: merchant_id.clone(),
                    amount,
                    currency: currency.code().to_owned(),
                    direction: Direction::In,
                    idempotency_key: None,
                    refund_of: None,
                },
            )
            .await?;
            let confirmed = app
                .provider
                .verify_notification(&app.provider.notification_for(&charge))
                .map_err(|e| Error::payment("provider_declined", e.to_string()))?;
            if confirmed.status != ChargeStatus::Succeeded || confirmed.amount != amount {
                return Err(Error::payment(
                    "provider_declined",
                    "The bank did not confirm the movement.",
                ));
            }
            // A racing copy of this request is answered with the first copy's charge: the
            // funding is recorded under the id the bank charged.
            funding_id = charge.reference;
            Funding::Bank(app.provider.name())
        }
        Some("available") => Funding::Available,
        Some(_) => {
            return Err(
                Error::invalid("source_invalid", "source must be bank or available.")
                    .param("source"),
            );
        }
    };
    let op = MemberOp::FundBudget {
        funding_id,
        merchant_id: merchant_id.clone(),
        amount,
        currency,
        from,
    };
    app.payments
        .run(Op::Member(Box::new(op)), idem(&merchant_id, key, hash))
        .await
}

/// A consumer's standing in a merchant's program: an open card and the tier it reached.
#[derive(Clone, Debug)]
pub struct Membership {
    pub card_id: String,
    pub tier: Option<String>,
}

/// The consumer's open card at a merchant, if they hold one (a closed card is no membership).
/// Coupon audiences (`members`, `tier:<name>`) are answered from this.
pub async fn membership(db: &Db, user_id: &str, merchant_id: &str) -> Result<Option<Membership>> {
    Ok(store::card_at(db, user_id, merchant_id)
        .await?
        .filter(|c| c.status == "active")
        .map(|c| Membership {
            card_id: c.id,
            tier: c.tier,
        }))
}

/// The names of a merchant's tiers, lowest first (none without a program).
pub async fn tier_names(db: &Db, merchant_id: &str) -> Result<Vec<String>> {
    Ok(program(db, merchant_id)
        .await?
        .map(|p| p.tiers.into_iter().map(|t| t.name).collect())
        .unwrap_or_default())
}

/// The time zone a program's days are counted in when the merchant has no store yet.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Gives each program's birthday coupon to the members whose birthday it is on `now`'s date in
/// the merchant's time zone (the one its owner set, else its first store's). Each coupon is a claim through the sequencer
/// (stock, claim window and per-consumer limit hold) under the idempotency key
/// `birthday:<year>` scoped to the card, so however often the sweep runs that day, on however
/// many nodes, a card gets one birthday coupon a year; a birthday cannot be changed once given,
/// so the key's 48 hours outlive the day. Returns how many coupons are held for today's
/// birthdays after the sweep (issued now or before); refusals (sold out, limit) are skipped.
pub async fn birthday_sweep(app: &AppState, now: jiff::Timestamp) -> Result<usize> {
    let mut given = 0;
    for program in store::birthday_programs(&app.db).await? {
        let Some(template_id) = program.birthday_coupon_template_id.clone() else {
            continue;
        };
        let zone = crate::stores::service::merchant_zone(&app.db, &program.merchant_id).await?;
        let today = now.to_zoned(zone).date();
        let born = crate::identity::service::born_on(&app.db, today).await?;
        if born.is_empty() {
            continue;
        }
        let born = serde_json::to_string(&born).map_err(Error::internal)?;
        for (card_id, user_id) in store::open_cards_of(&app.db, &program.merchant_id, born).await? {
            let claim = crate::marketing::engine::Claim {
                template_id: template_id.clone(),
                user_id,
                coupon_id: crate::ids::CouponId::generate().as_str().to_owned(),
                via: "birthday",
            };
            let key = IdemKey {
                scope: card_id.clone(),
                key: format!("birthday:{}", today.year()),
                hash: format!("birthday:{card_id}:{template_id}:{}", today.year()),
            };
            match app
                .payments
                .run(Op::Claim(Box::new(claim)), Some(key))
                .await
            {
                Ok(_) => given += 1,
                Err(e) => {
                    tracing::info!(card_id, code = %e.code, "no birthday coupon for this card");
                }
            }
        }
    }
    Ok(given)
}
