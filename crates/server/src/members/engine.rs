//! Member cards in the sequencer. Every movement of a card's money goes through the node's
//! sequencer (the payments engine), in the same batch transaction as its ledger transfers: a
//! top-up from the wallet with the program's bonus, a payment from the card (the paid part
//! first, then the bonus), a refund (back to the card in the payment's proportions), closing the
//! card, and funding the merchant's promotion budget that pays the bonuses.
//!
//! The payments engine calls [`load`] (the cards, programs and payment splits a batch touches;
//! cards locked on PostgreSQL, after pay codes and before accounts), [`accounts_of`] and
//! [`refund_accounts`] for the ledger accounts, [`apply`] for each [`MemberOp`],
//! [`card_payment`]/[`after_pay`] around a payment whose source is a card,
//! [`card_refund`]/[`after_refund`] around a refund of one, and [`flush`].
//!
//! Glossary: the *paid part* (`accounts::card`) is money the consumer moved in from the wallet;
//! the *bonus part* (`accounts::card_bonus`) is money the merchant added from its promotion
//! budget (`accounts::merchant_promotion`, funded in advance; a bonus is paid only from what it
//! holds, while coupons may take it below zero until settlement). Points are earned
//! on the paid part of each card payment; the tier is measured on the whole amount paid with
//! the card in the last 12 months and re-evaluated at each card payment or refund.

use super::model::{CardRow, Program, ProgramRow};
use crate::db::{Tx, Value};
use crate::error::{Error, Result};
use crate::http::Reply;
use crate::ids::{CardMovementId, TransferId};
use crate::payments::accounts::{self, AccountSpec};
use crate::payments::engine::{self as pe, NewPayment, Op, PaymentRow, State, ids_json};
use o2o_ledger::{Action, Currency, Transfer};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Twelve months (365 days) in microseconds: the window the tier's spend is measured over.
pub const TIER_WINDOW_US: i64 = 365 * 24 * 3_600 * 1_000_000;

/// Where a promotion budget's money comes from.
#[derive(Clone, Debug)]
pub enum Funding {
    /// Paid in through the payment provider (confirmed before the command is queued).
    Bank(&'static str),
    /// The merchant's settled, available balance.
    Available,
}

/// What a member command does.
#[derive(Clone, Debug)]
pub enum MemberOp {
    /// Wallet → card (paid part), plus the program's bonus from the promotion budget.
    TopUp {
        movement_id: String,
        card_id: String,
        user_id: String,
        merchant_id: String,
        amount: i64,
        currency: Currency,
    },
    /// The paid part back to the wallet, the bonus back to the promotion budget; card closed.
    Close {
        movement_id: String,
        card_id: String,
        user_id: String,
        merchant_id: String,
        currency: Currency,
    },
    /// Points from the card for one coupon of a template priced in points (积分兑换): the
    /// coupon is issued by the claim path (stock, limit and claim window hold) and the points
    /// leave the card in the same batch, or neither happens.
    Exchange {
        movement_id: String,
        card_id: String,
        claim: crate::marketing::engine::Claim,
    },
    /// Money into the merchant's promotion budget.
    FundBudget {
        funding_id: String,
        merchant_id: String,
        amount: i64,
        currency: Currency,
        from: Funding,
    },
}

/// A card as the batch sees it.
#[derive(Clone, Debug)]
struct BatchCard {
    row: CardRow,
    spend_12m: i64,
}

/// How a card payment was split, and what refunds returned so far.
#[derive(Clone, Debug, Default)]
struct Split {
    paid: i64,
    bonus: i64,
    points: i64,
    paid_refunded: i64,
    bonus_refunded: i64,
    points_reversed: i64,
}

/// What a card payment takes from each part.
#[derive(Clone, Copy, Debug)]
pub struct CardSpend {
    paid: i64,
    bonus: i64,
}

/// What a card refund returns to each part (or, for a closed card, to wallet and budget).
#[derive(Clone, Copy, Debug)]
pub struct CardBack {
    paid: i64,
    bonus: i64,
}

/// The cards, programs and splits of one batch.
#[derive(Default)]
pub struct Batch {
    cards: HashMap<String, BatchCard>,
    programs: HashMap<String, Program>,
    splits: HashMap<String, Split>,
    changed: Vec<String>,
    movements: Vec<serde_json::Value>,
}

impl Batch {
    fn touch(&mut self, id: &str) {
        if !self.changed.iter().any(|c| c == id) {
            self.changed.push(id.to_owned());
        }
    }
}

/// A closed card cannot pay, be topped up or be named by a pay code.
pub(crate) fn card_closed() -> Error {
    Error::conflict(
        "card_closed",
        "This member card is closed; join again to reopen it.",
    )
}

fn card_not_found() -> Error {
    Error::not_found("card_not_found", "No such member card.").param("source")
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct SpendRow {
    card_id: String,
    spend: i64,
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct SplitRow {
    payment_id: String,
    kind: String,
    paid: i64,
    bonus: i64,
    points: i64,
}

/// Loads what the batch's card commands, card payments and card refunds touch.
pub(crate) async fn load(
    tx: &mut Tx,
    ops: &[(Op, Option<pe::IdemKey>)],
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    let mut cards: HashSet<String> = HashSet::new();
    for (op, _) in ops {
        match op {
            Op::Member(m) => match &**m {
                MemberOp::TopUp { card_id, .. }
                | MemberOp::Close { card_id, .. }
                | MemberOp::Exchange { card_id, .. } => {
                    cards.insert(card_id.clone());
                }
                MemberOp::FundBudget { .. } => {}
            },
            Op::Pay(p) => {
                if let (_, Some(s)) = pe::payer_and_source(state, p)
                    && s.starts_with("crd_")
                {
                    cards.insert(s.to_owned());
                }
            }
            Op::Order(o) => {
                if let Some(p) = crate::orders::engine::payment_of(o)
                    && let Some(s) = &p.source
                    && s.starts_with("crd_")
                {
                    cards.insert(s.clone());
                }
            }
            _ => {}
        }
    }
    let card_payments: Vec<&str> = state
        .payments
        .values()
        .filter(|p| p.source.starts_with("crd_"))
        .map(|p| {
            cards.insert(p.source.clone());
            p.id.as_str()
        })
        .collect();
    let payment_ids = ids_json(card_payments.into_iter());
    if cards.is_empty() {
        return Ok(());
    }
    let card_ids = ids_json(cards.iter().map(String::as_str));
    let rows: Vec<CardRow> = tx
        .fetch_all_for(
            "SELECT * FROM member_cards WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
            "SELECT * FROM member_cards WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
            vec![Value::from(card_ids.clone())],
        )
        .await?;
    let spends: Vec<SpendRow> = tx
        .fetch_all_for(
            "SELECT card_id, CAST(SUM(spend) AS BIGINT) AS spend FROM member_card_movements \
             WHERE card_id IN (SELECT value FROM json_each($1)) AND created_at >= $2 GROUP BY card_id",
            "SELECT card_id, CAST(SUM(spend) AS BIGINT) AS spend FROM member_card_movements \
             WHERE card_id IN (SELECT json_array_elements_text($1::json)) AND created_at >= $2 GROUP BY card_id",
            vec![Value::from(card_ids), Value::from(state.now - TIER_WINDOW_US)],
        )
        .await?;
    let spends: HashMap<String, i64> = spends.into_iter().map(|s| (s.card_id, s.spend)).collect();
    let merchants = ids_json(rows.iter().map(|r| r.merchant_id.as_str()));
    let programs: Vec<ProgramRow> = tx
        .fetch_all_for(
            "SELECT * FROM member_programs WHERE merchant_id IN (SELECT value FROM json_each($1))",
            "SELECT * FROM member_programs WHERE merchant_id IN (SELECT json_array_elements_text($1::json))",
            vec![Value::from(merchants)],
        )
        .await?;
    for p in programs {
        state
            .members
            .programs
            .insert(p.merchant_id.clone(), p.program());
    }
    for r in rows {
        let spend_12m = spends.get(&r.id).copied().unwrap_or(0);
        state
            .members
            .cards
            .insert(r.id.clone(), BatchCard { row: r, spend_12m });
    }
    if payment_ids != "[]" {
        let rows: Vec<SplitRow> = tx
            .fetch_all_for(
                "SELECT payment_id, kind, paid, bonus, points FROM member_card_movements \
                 WHERE payment_id IN (SELECT value FROM json_each($1))",
                "SELECT payment_id, kind, paid, bonus, points FROM member_card_movements \
                 WHERE payment_id IN (SELECT json_array_elements_text($1::json))",
                vec![Value::from(payment_ids)],
            )
            .await?;
        for r in rows {
            let s = state.members.splits.entry(r.payment_id).or_default();
            if r.kind == "payment" {
                s.paid -= r.paid;
                s.bonus -= r.bonus;
                s.points += r.points;
            } else {
                s.paid_refunded += r.paid;
                s.bonus_refunded += r.bonus;
                s.points_reversed -= r.points;
            }
        }
    }
    Ok(())
}

/// The claim a member command makes (a points exchange's), for the batch to load its template
/// and the holder's count with the other claims.
pub(crate) fn claim_of(op: &MemberOp) -> Option<&crate::marketing::engine::Claim> {
    match op {
        MemberOp::Exchange { claim, .. } => Some(claim),
        _ => None,
    }
}

/// The ledger accounts a member command touches (points are not money: an exchange none).
pub(crate) fn accounts_of(op: &MemberOp) -> Vec<AccountSpec> {
    match op {
        MemberOp::Exchange { .. } => vec![],
        MemberOp::TopUp {
            card_id,
            user_id,
            merchant_id,
            currency,
            ..
        }
        | MemberOp::Close {
            card_id,
            user_id,
            merchant_id,
            currency,
            ..
        } => vec![
            accounts::wallet(user_id, *currency),
            accounts::card(card_id, *currency),
            accounts::card_bonus(card_id, *currency),
            accounts::merchant_promotion(merchant_id, *currency),
        ],
        MemberOp::FundBudget {
            merchant_id,
            currency,
            from,
            ..
        } => vec![
            match from {
                Funding::Bank(provider) => accounts::bank(provider, *currency),
                Funding::Available => accounts::merchant_available(merchant_id, *currency),
            },
            accounts::merchant_promotion(merchant_id, *currency),
        ],
    }
}

/// The extra accounts a refund (or capture, cancel) of `p` touches when it was paid by card:
/// the bonus part, and for a closed card the wallet and the promotion budget.
pub(crate) fn refund_accounts(p: &PaymentRow) -> Vec<AccountSpec> {
    let Ok(c) = Currency::parse(&p.currency) else {
        return vec![];
    };
    if !p.source.starts_with("crd_") {
        return vec![];
    }
    let mut out = vec![
        accounts::card_bonus(&p.source, c),
        accounts::merchant_promotion(&p.merchant_id, c),
    ];
    if let Some(u) = &p.user_id {
        out.push(accounts::wallet(u, c));
    }
    out
}

fn new_transfer(
    debit: &AccountSpec,
    credit: &AccountSpec,
    amount: i64,
    currency: Currency,
    code: &'static str,
    reference: &str,
) -> Transfer {
    Transfer {
        id: TransferId::generate().as_str().to_owned(),
        debit: debit.id.clone(),
        credit: credit.id.clone(),
        amount,
        currency,
        action: Action::Post,
        code,
        reference: reference.to_owned(),
    }
}

fn available(state: &State, spec: &AccountSpec) -> i64 {
    state
        .book
        .account(&spec.id)
        .map(o2o_ledger::Account::available)
        .unwrap_or(0)
}

/// The card `card_id` of `user_id`, active.
fn own_active_card(state: &State, card_id: &str, user_id: Option<&str>) -> Result<CardRow> {
    let card = state
        .members
        .cards
        .get(card_id)
        .filter(|c| Some(c.row.user_id.as_str()) == user_id)
        .ok_or_else(card_not_found)?;
    if card.row.status != "active" {
        return Err(card_closed());
    }
    Ok(card.row.clone())
}

/// Rebuilds a payment's chain when its source is a member card: the card's paid part pays
/// first, then its bonus part. Other sources pass through unchanged.
pub(crate) fn card_payment(
    state: &State,
    p: &NewPayment,
    user_id: Option<&str>,
    source: &str,
    chain: Vec<Transfer>,
) -> Result<(Vec<Transfer>, Option<CardSpend>)> {
    if !source.starts_with("crd_") {
        return Ok((chain, None));
    }
    let card = own_active_card(state, source, user_id)?;
    if card.merchant_id != p.merchant_id {
        return Err(Error::invalid(
            "card_wrong_merchant",
            "This member card belongs to another merchant; pay from the wallet instead.",
        )
        .param("source"));
    }
    if card.currency != p.currency.code() {
        return Err(Error::invalid(
            "currency_mismatch",
            format!("This member card holds {}.", card.currency),
        )
        .param("currency"));
    }
    if p.hold_until.is_some() {
        return Err(Error::invalid(
            "card_capture_manual_unsupported",
            "A member card pays at once; capture: manual needs the wallet.",
        )
        .param("capture"));
    }
    let c = p.currency;
    let paid_account = accounts::card(source, c);
    let bonus_account = accounts::card_bonus(source, c);
    let paid_available = available(state, &paid_account);
    let bonus_available = available(state, &bonus_account);
    if paid_available.saturating_add(bonus_available) < p.amount {
        return Err(Error::payment(
            "insufficient_funds",
            "There is not enough on this member card.",
        ));
    }
    let paid = p.amount.min(paid_available);
    let bonus = p.amount - paid;
    let merchant = accounts::merchant_pending(&p.merchant_id, c);
    let mut out = Vec::with_capacity(chain.len() + 1);
    for t in chain {
        if t.debit == paid_account.id && t.credit == merchant.id {
            if paid > 0 {
                out.push(Transfer { amount: paid, ..t });
            }
            if bonus > 0 {
                out.push(new_transfer(
                    &bonus_account,
                    &merchant,
                    bonus,
                    c,
                    "payment_bonus",
                    &p.id,
                ));
            }
        } else {
            out.push(t);
        }
    }
    Ok((out, Some(CardSpend { paid, bonus })))
}

/// The (coupon template, consumer) pairs the batch's cards may be given: the coupon of each
/// tier above the one a card is in. Loaded with the batch so an upgrade can issue its coupon in
/// the same transaction as the payment that caused it.
pub(crate) fn possible_grants(state: &State) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for card in state.members.cards.values() {
        let Some(program) = state.members.programs.get(&card.row.merchant_id) else {
            continue;
        };
        let floor = card
            .row
            .tier
            .as_deref()
            .and_then(|name| program.tiers.iter().find(|t| t.name == name))
            .map_or(-1, |t| t.min_spend);
        for t in program.tiers.iter().filter(|t| t.min_spend > floor) {
            if let Some(template) = &t.coupon_template_id {
                out.push((template.clone(), card.row.user_id.clone()));
            }
        }
    }
    out
}

/// What a member tier took off a payment.
#[derive(Clone, Debug)]
pub struct TierDiscount {
    pub tier: String,
    pub percent_off: i64,
    pub amount: i64,
}

/// The price cut a member card's tier gives a payment from that card: the tier's `percent_off`
/// of `owed` (what is left to pay after any coupon), rounded down to the minor unit as coupons'
/// percents are (never more than the stated percent), leaving at least one to pay. The tier is
/// the one the card is in before this payment. It stacks with a coupon: the coupon is measured
/// on the bill, the tier on what the payer still owes, so it never cuts the part the promotion
/// budget pays. It is the merchant's own price cut: the payer is charged less and the merchant
/// receives what was charged (nothing comes from the promotion budget). `None` for other
/// sources, held payments, and cards that are not the payer's open card at this merchant (the
/// payment itself then refuses them).
pub(crate) fn tier_discount(state: &State, p: &NewPayment, owed: i64) -> Option<TierDiscount> {
    let (user, source) = pe::payer_and_source(state, p);
    let source = source.filter(|s| s.starts_with("crd_"))?;
    if p.hold_until.is_some() {
        return None;
    }
    let card = state.members.cards.get(source)?;
    if Some(card.row.user_id.as_str()) != user
        || card.row.merchant_id != p.merchant_id
        || card.row.status != "active"
        || card.row.currency != p.currency.code()
    {
        return None;
    }
    let name = card.row.tier.as_deref()?;
    let tier = state
        .members
        .programs
        .get(&card.row.merchant_id)?
        .tiers
        .iter()
        .find(|t| t.name == name)?;
    let raw = i64::try_from(i128::from(owed) * i128::from(tier.percent_off) / 100).ok()?;
    let amount = raw.min(owed - 1).max(0);
    (amount > 0).then(|| TierDiscount {
        tier: tier.name.clone(),
        percent_off: tier.percent_off,
        amount,
    })
}

/// Re-evaluates a card's tier from its 12-month spend. A move up into a tier that names a
/// coupon issues one coupon of it to the card holder, in this batch (the coupon of the tier
/// reached, not of tiers jumped over; stock, claim window and the per-consumer limit hold, so a
/// card that falls and climbs back gets another only within the limit).
fn retier(state: &mut State, card_id: &str) {
    let Some(card) = state.members.cards.get(card_id) else {
        return;
    };
    let program = state.members.programs.get(&card.row.merchant_id);
    let reached = program.and_then(|p| p.tier_for(card.spend_12m));
    let tier = reached.map(|t| t.name.clone());
    if tier == card.row.tier {
        return;
    }
    let was = card
        .row
        .tier
        .as_deref()
        .and_then(|name| program?.tiers.iter().find(|t| t.name == name))
        .map_or(-1, |t| t.min_spend);
    let upgrade_coupon = reached
        .filter(|t| t.min_spend > was && card.row.status == "active")
        .and_then(|t| t.coupon_template_id.clone());
    let (from, merchant_id, user_id) = (
        card.row.tier.clone(),
        card.row.merchant_id.clone(),
        card.row.user_id.clone(),
    );
    if let Some(card) = state.members.cards.get_mut(card_id) {
        card.row.tier = tier.clone();
    }
    let coupon_id = upgrade_coupon
        .and_then(|template| crate::marketing::engine::grant(state, &template, &user_id, "tier"));
    pe::event(
        state,
        &merchant_id,
        None,
        "member.tier_changed",
        &json!({"card_id": card_id, "consumer_id": user_id, "from": from, "to": tier,
            "coupon_id": coupon_id}),
    );
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &mut State,
    id: &str,
    card_id: &str,
    kind: &str,
    paid: i64,
    bonus: i64,
    points: i64,
    spend: i64,
    payment_id: Option<&str>,
    reference: &str,
) {
    let merchant_id = state
        .members
        .cards
        .get(card_id)
        .map(|c| c.row.merchant_id.clone())
        .unwrap_or_default();
    state.members.movements.push(json!({
        "id": id, "card_id": card_id, "merchant_id": merchant_id, "kind": kind,
        "paid": paid, "bonus": bonus, "points": points, "spend": spend,
        "payment_id": payment_id, "reference": reference, "created_at": state.now,
    }));
    let now = state.now;
    if let Some(c) = state.members.cards.get_mut(card_id) {
        // Not floored at zero: a refund takes back exactly the points its payment earned, even
        // when they were already spent (a points debt later earnings pay off), so a card's
        // movements always add up to its points.
        c.row.points = c.row.points.saturating_add(points);
        c.spend_12m = c.spend_12m.saturating_add(spend);
        c.row.updated_at = now;
    }
    state.members.touch(card_id);
    retier(state, card_id);
}

/// Records a card payment that was applied: points, tier spend, the split for refunds.
pub(crate) fn after_pay(state: &mut State, p: &NewPayment, source: &str, spend: CardSpend) {
    let points = state
        .members
        .cards
        .get(source)
        .and_then(|c| state.members.programs.get(&c.row.merchant_id))
        .map(|prog| prog.points_for(spend.paid))
        .unwrap_or(0);
    state.members.splits.insert(
        p.id.clone(),
        Split {
            paid: spend.paid,
            bonus: spend.bonus,
            points,
            ..Split::default()
        },
    );
    let id = CardMovementId::generate().as_str().to_owned();
    record(
        state,
        &id,
        source,
        "payment",
        -spend.paid,
        -spend.bonus,
        points,
        p.amount,
        Some(&p.id),
        &p.id,
    );
}

/// Rebuilds a refund's chain when the payment was made by card: the refund goes back to the
/// paid and bonus parts in the payment's proportions (the bonus rounded down, so the paid part
/// never gets back more than it paid). For a closed card the paid share goes to the wallet and
/// the bonus share back to the merchant's promotion budget, as closing would have done.
pub(crate) fn card_refund(
    state: &State,
    p: &PaymentRow,
    amount: i64,
    chain: Vec<Transfer>,
) -> Result<(Vec<Transfer>, Option<CardBack>)> {
    if !p.source.starts_with("crd_") {
        return Ok((chain, None));
    }
    let split = state.members.splits.get(&p.id).ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "card payment {} has no recorded split",
            p.id
        ))
    })?;
    let card = state
        .members
        .cards
        .get(&p.source)
        .ok_or_else(card_not_found)?;
    let total = i128::from(split.paid + split.bonus);
    let refunded_after = i128::from(split.paid_refunded + split.bonus_refunded + amount);
    let bonus_total = if total == 0 {
        0
    } else {
        i64::try_from(i128::from(split.bonus) * refunded_after / total).unwrap_or(split.bonus)
    };
    let bonus = (bonus_total - split.bonus_refunded).clamp(0, amount);
    let paid = amount - bonus;
    let c = Currency::parse(&p.currency).map_err(Error::internal)?;
    let merchant = accounts::merchant_pending(&p.merchant_id, c);
    let closed = card.row.status != "active";
    let (paid_to, bonus_to) = if closed {
        (
            accounts::wallet(&card.row.user_id, c),
            accounts::merchant_promotion(&p.merchant_id, c),
        )
    } else {
        (
            accounts::card(&p.source, c),
            accounts::card_bonus(&p.source, c),
        )
    };
    let card_account = accounts::card(&p.source, c).id;
    let mut out = Vec::with_capacity(chain.len() + 1);
    for t in chain {
        if t.debit == merchant.id && t.credit == card_account {
            if paid > 0 {
                out.push(Transfer {
                    amount: paid,
                    credit: paid_to.id.clone(),
                    ..t.clone()
                });
            }
            if bonus > 0 {
                out.push(new_transfer(
                    &merchant,
                    &bonus_to,
                    bonus,
                    c,
                    if closed {
                        "refund_bonus_forfeit"
                    } else {
                        "refund_bonus"
                    },
                    &t.reference,
                ));
            }
        } else {
            out.push(t);
        }
    }
    Ok((out, Some(CardBack { paid, bonus })))
}

/// Records a card refund that was applied: points taken back in proportion, tier spend lowered.
/// The points are taken back even when the member already spent them (the card then owes
/// points, and exchanges are refused until later earnings pay the debt off).
pub(crate) fn after_refund(state: &mut State, p: &PaymentRow, refund_id: &str, back: CardBack) {
    let Some(split) = state.members.splits.get_mut(&p.id) else {
        return;
    };
    split.paid_refunded += back.paid;
    split.bonus_refunded += back.bonus;
    let remaining_paid = (split.paid - split.paid_refunded).max(0);
    let keep = if split.paid == 0 {
        0
    } else {
        i64::try_from(
            i128::from(split.points) * i128::from(remaining_paid) / i128::from(split.paid),
        )
        .unwrap_or(0)
    };
    let reverse = (split.points - split.points_reversed - keep).max(0);
    split.points_reversed += reverse;
    let closed = state
        .members
        .cards
        .get(&p.source)
        .is_some_and(|c| c.row.status != "active");
    let id = CardMovementId::generate().as_str().to_owned();
    // A closed card's refund went to the wallet and the budget: its balances do not change.
    let (paid, bonus) = if closed {
        (0, 0)
    } else {
        (back.paid, back.bonus)
    };
    record(
        state,
        &id,
        &p.source.clone(),
        "refund",
        paid,
        bonus,
        -reverse,
        -(back.paid + back.bonus),
        Some(&p.id),
        refund_id,
    );
}

/// The balances of a card as the batch sees them.
#[derive(serde::Serialize)]
struct CardMoved {
    id: String,
    card: CardBalances,
}

#[derive(serde::Serialize)]
struct CardBalances {
    id: String,
    status: String,
    currency: String,
    balance: i64,
    bonus_balance: i64,
    points: i64,
    tier: Option<String>,
    /// For a top-up: the amount and the bonus it earned; for a closing: what went back.
    amount: i64,
    bonus: i64,
}

fn moved(state: &State, movement_id: &str, card_id: &str, amount: i64, bonus: i64) -> CardMoved {
    let card = state.members.cards.get(card_id).map(|c| c.row.clone());
    let currency = card
        .as_ref()
        .and_then(|c| Currency::parse(&c.currency).ok())
        .unwrap_or(Currency::CNY);
    CardMoved {
        id: movement_id.to_owned(),
        card: CardBalances {
            id: card_id.to_owned(),
            status: card.as_ref().map(|c| c.status.clone()).unwrap_or_default(),
            currency: currency.code().to_owned(),
            balance: available(state, &accounts::card(card_id, currency)),
            bonus_balance: available(state, &accounts::card_bonus(card_id, currency)),
            points: card.as_ref().map(|c| c.points).unwrap_or(0),
            tier: card.and_then(|c| c.tier),
            amount,
            bonus,
        },
    }
}

/// Applies one member command.
pub(crate) fn apply(state: &mut State, op: &MemberOp) -> Result<Reply> {
    match op {
        MemberOp::TopUp {
            movement_id,
            card_id,
            user_id,
            merchant_id,
            amount,
            currency,
        } => {
            let card = own_active_card(state, card_id, Some(user_id))?;
            if card.currency != currency.code() {
                return Err(Error::invalid(
                    "currency_mismatch",
                    format!("This member card holds {}.", card.currency),
                )
                .param("currency"));
            }
            let bonus = state
                .members
                .programs
                .get(merchant_id)
                .map(|p| p.bonus_for(*amount))
                .unwrap_or(0);
            let promotion = accounts::merchant_promotion(merchant_id, *currency);
            if bonus > 0 && available(state, &promotion) < bonus {
                return Err(Error::payment(
                    "bonus_budget_insufficient",
                    "The merchant's bonus budget cannot pay this top-up's bonus right now; \
                     try a smaller top-up or ask the shop.",
                ));
            }
            let mut chain = vec![new_transfer(
                &accounts::wallet(user_id, *currency),
                &accounts::card(card_id, *currency),
                *amount,
                *currency,
                "card_top_up",
                movement_id,
            )];
            if bonus > 0 {
                chain.push(new_transfer(
                    &promotion,
                    &accounts::card_bonus(card_id, *currency),
                    bonus,
                    *currency,
                    "card_bonus",
                    movement_id,
                ));
            }
            pe::post_chain(state, &chain)?;
            record(
                state,
                movement_id,
                card_id,
                "top_up",
                *amount,
                bonus,
                0,
                0,
                None,
                movement_id,
            );
            Reply::created(&moved(state, movement_id, card_id, *amount, bonus))
        }
        MemberOp::Close {
            movement_id,
            card_id,
            user_id,
            merchant_id,
            currency,
        } => {
            let card = own_active_card(state, card_id, Some(user_id))?;
            let c = Currency::parse(&card.currency).unwrap_or(*currency);
            let paid_account = accounts::card(card_id, c);
            let bonus_account = accounts::card_bonus(card_id, c);
            let paid = available(state, &paid_account);
            let bonus = available(state, &bonus_account);
            let mut chain = Vec::new();
            if paid > 0 {
                chain.push(new_transfer(
                    &paid_account,
                    &accounts::wallet(user_id, c),
                    paid,
                    c,
                    "card_close_refund",
                    movement_id,
                ));
            }
            if bonus > 0 {
                chain.push(new_transfer(
                    &bonus_account,
                    &accounts::merchant_promotion(merchant_id, c),
                    bonus,
                    c,
                    "card_bonus_forfeit",
                    movement_id,
                ));
            }
            if !chain.is_empty() {
                pe::post_chain(state, &chain)?;
            }
            let points = card.points;
            let now = state.now;
            if let Some(c) = state.members.cards.get_mut(card_id) {
                c.row.status = "closed".into();
                c.row.closed_at = Some(now);
            }
            record(
                state,
                movement_id,
                card_id,
                "close",
                -paid,
                -bonus,
                -points,
                0,
                None,
                movement_id,
            );
            Reply::ok(&moved(state, movement_id, card_id, paid, bonus))
        }
        MemberOp::Exchange {
            movement_id,
            card_id,
            claim,
        } => {
            let card = own_active_card(state, card_id, Some(claim.user_id.as_str()))?;
            let price = crate::marketing::engine::points_price(
                state,
                &claim.template_id,
                &card.merchant_id,
            )?;
            if card.points < price {
                return Err(Error::conflict(
                    "points_insufficient",
                    format!(
                        "This coupon costs {price} points; the card has {}.",
                        card.points
                    ),
                )
                .param("coupon_template_id")
                .arg("price", price)
                .arg("points", card.points));
            }
            let coupon = crate::marketing::engine::exchange(state, claim)?;
            record(
                state,
                movement_id,
                card_id,
                "exchange",
                0,
                0,
                -price,
                0,
                None,
                &coupon.id,
            );
            pe::event(
                state,
                &card.merchant_id,
                None,
                "member.points_exchanged",
                &json!({"card_id": card_id, "consumer_id": claim.user_id, "coupon_id": coupon.id,
                    "coupon_template_id": claim.template_id, "points": price}),
            );
            let card = state.members.cards.get(card_id).map(|c| c.row.clone());
            Reply::created(&super::model::PointsExchanged {
                id: movement_id.clone(),
                points_spent: price,
                card: super::model::CardPoints {
                    id: card_id.clone(),
                    points: card.as_ref().map_or(0, |c| c.points),
                    tier: card.and_then(|c| c.tier),
                },
                coupon,
            })
        }
        MemberOp::FundBudget {
            funding_id,
            merchant_id,
            amount,
            currency,
            from,
        } => {
            let source = match from {
                Funding::Bank(provider) => accounts::bank(provider, *currency),
                Funding::Available => {
                    let a = accounts::merchant_available(merchant_id, *currency);
                    // What payouts in flight hold is not available.
                    if state
                        .book
                        .account(&a.id)
                        .map(|a| a.available())
                        .unwrap_or(0)
                        < *amount
                    {
                        return Err(Error::payment(
                            "insufficient_funds",
                            "That is more than the merchant's available balance.",
                        ));
                    }
                    a
                }
            };
            let budget = accounts::merchant_promotion(merchant_id, *currency);
            let t = new_transfer(
                &source,
                &budget,
                *amount,
                *currency,
                "promotion_funding",
                funding_id,
            );
            pe::post_chain(state, &[t])?;
            Reply::created(&json!({
                "id": funding_id, "merchant_id": merchant_id, "amount": amount,
                "currency": currency.code(), "bonus_budget": available(state, &budget),
            }))
        }
    }
}

/// Writes the batch's card changes and movements.
pub(crate) async fn flush(
    tx: &mut Tx,
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    let m = &mut state.members;
    if !m.changed.is_empty() {
        let rows: Vec<serde_json::Value> = m
            .changed
            .iter()
            .filter_map(|id| m.cards.get(id))
            .map(|c| {
                json!({"id": c.row.id, "status": c.row.status, "points": c.row.points,
                    "tier": c.row.tier, "updated_at": c.row.updated_at, "closed_at": c.row.closed_at})
            })
            .collect();
        tx.write_rows(
            &rows,
            "UPDATE member_cards SET status = :status, points = :points, tier = :tier, updated_at = :updated_at, closed_at = :closed_at WHERE id = :id",
            "UPDATE member_cards AS c SET status = x.status, points = x.points, tier = x.tier, \
             updated_at = x.updated_at, closed_at = x.closed_at \
             FROM json_to_recordset($1::json) AS x(id text, status text, points bigint, tier text, \
             updated_at bigint, closed_at bigint) WHERE c.id = x.id",
        )
        .await?;
    }
    if !m.movements.is_empty() {
        tx.write_rows(
            &m.movements,
            "INSERT INTO member_card_movements (id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id, reference, created_at) VALUES (:id, :card_id, :merchant_id, :kind, :paid, :bonus, :points, :spend, :payment_id, :reference, :created_at)",
            "INSERT INTO member_card_movements (id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id, reference, created_at) \
             SELECT id, card_id, merchant_id, kind, paid, bonus, points, spend, payment_id, reference, created_at \
             FROM json_to_recordset($1::json) AS x(id text, card_id text, merchant_id text, kind text, paid bigint, \
             bonus bigint, points bigint, spend bigint, payment_id text, reference text, created_at bigint)",
        )
        .await?;
    }
    Ok(())
}
