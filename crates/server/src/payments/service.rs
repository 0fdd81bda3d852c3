//! Payments' rules: what may be paid, by whom, from where; every movement itself is a command
//! for the engine (the sequencer), so nothing here writes money directly.

use super::accounts;
use super::engine::{IdemKey, NewPayment, Op, PaymentRow};
use super::model::*;
use super::provider::{
    Charge, ChargeRequest, ChargeStatus, Direction, ProviderError, SignedNotification,
};
use super::store;
use crate::app::AppState;
use crate::db::{Db, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::http::{List, Page, Reply};
use crate::identity::{Principal, PrincipalKind, Role};
use crate::ids::{PaymentId, RefundId, WalletMovementId};
use o2o_ledger::{Currency, Verification, book::AccountCheck};

/// The most a wallet top-up or withdrawal may move at once (¥50,000).
pub const MAX_WALLET_MOVE: i64 = 5_000_000;
/// The most one payment may be (¥100,000).
pub const MAX_PAYMENT: i64 = 10_000_000;
/// Default and bounds of a hold's life (capture: manual).
pub const HOLD_DEFAULT_S: i64 = 24 * 3_600;
pub const HOLD_MIN_S: i64 = 60;
pub const HOLD_MAX_S: i64 = 7 * 24 * 3_600;

pub fn parse_currency(code: &str) -> Result<Currency> {
    Currency::parse(code).map_err(|_| {
        Error::invalid(
            "currency_invalid",
            "currency must be an ISO 4217 code such as CNY.",
        )
        .param("currency")
    })
}

pub fn parse_amount(amount: i64, max: i64) -> Result<i64> {
    if amount <= 0 {
        return Err(Error::invalid(
            "amount_invalid",
            "amount must be a positive number of minor units.",
        )
        .param("amount"));
    }
    if amount > max {
        return Err(Error::invalid(
            "amount_too_large",
            format!("amount may be at most {max} minor units."),
        )
        .param("amount"));
    }
    Ok(amount)
}

fn optional_text(v: Option<String>, max: usize, param: &'static str) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) if s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(Error::invalid(
                "text_invalid",
                format!("{param} must be at most {max} characters, without control characters."),
            )
            .param(param))
        }
        Some(s) => Ok(Some(s.trim().to_owned())),
    }
}

/// The business day of `now` in a store's time zone (`YYYY-MM-DD`).
pub fn business_day(timezone: Option<&str>, now: i64) -> String {
    let tz = timezone
        .and_then(|t| jiff::tz::TimeZone::get(t).ok())
        .unwrap_or_else(|| {
            jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC)
        });
    jiff::Timestamp::from_microsecond(now)
        .map(|t| t.to_zoned(tz).date().to_string())
        .unwrap_or_default()
}

fn idem_key(scope: &str, key: Option<String>, hash: &str) -> Option<IdemKey> {
    key.map(|key| IdemKey {
        scope: scope.to_owned(),
        key,
        hash: hash.to_owned(),
    })
}

/// Tops up a consumer's wallet from the payment provider (the sandbox bank by default).
pub async fn top_up(
    app: &AppState,
    user_id: &str,
    input: WalletMove,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    move_wallet(app, user_id, input, key, body_hash, Direction::In).await
}

/// Withdraws from a consumer's wallet back to their bank. The money is held in the wallet before
/// the bank is asked to pay it out (402 if the wallet holds less), so the bank never pays out
/// what the wallet does not hold and the same money cannot be withdrawn twice; the bank's
/// answer posts the hold, or releases it.
pub async fn withdraw(
    app: &AppState,
    user_id: &str,
    input: WalletMove,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    // (A top-up takes the same body: `body_hash` names the path too, see
    // `http::json::request_hasher`.)
    move_wallet(app, user_id, input, key, body_hash, Direction::Out).await
}

async fn move_wallet(
    app: &AppState,
    user_id: &str,
    input: WalletMove,
    key: Option<String>,
    body_hash: &str,
    direction: Direction,
) -> Result<Reply> {
    let movement = BankMove {
        id: WalletMovementId::generate().as_str().to_owned(),
        account: user_id.to_owned(),
        amount: parse_amount(input.amount, MAX_WALLET_MOVE)?,
        currency: parse_currency(&input.currency)?,
        direction,
        payout: false,
        refund_of: None,
    };
    through_bank(app, movement, user_id, key, body_hash).await
}

/// Refunds a consumer's top-up back to where it came from (the provider refunds its charge),
/// `amount` of it or all that is left of it. The money is held in the wallet first, as for a
/// withdrawal: more than the wallet holds is a 402 `insufficient_funds`, more than is left of the
/// top-up a 402 `refund_exceeds_top_up`, and either way the provider is not asked.
pub async fn refund_top_up(
    app: &AppState,
    user_id: &str,
    top_up_id: &str,
    input: TopUpRefund,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let not_found = || Error::not_found("top_up_not_found", "No such top-up to refund.");
    if !top_up_id.starts_with(WalletMovementId::PREFIX) {
        return Err(not_found());
    }
    let top_up = store::movement(&app.db, top_up_id)
        .await?
        .filter(|t| t.user_id == user_id && t.kind == "top_up")
        .ok_or_else(not_found)?;
    let (Some(charge), "succeeded") = (top_up.provider_ref.clone(), top_up.status.as_str()) else {
        return Err(Error::conflict(
            "top_up_not_made",
            "This top-up was not made, so there is nothing of it to refund.",
        ));
    };
    let amount = match input.amount {
        Some(a) => parse_amount(a, MAX_WALLET_MOVE)?,
        None => {
            // All that is left of it; for a keyed retry, what its first attempt took (since then
            // counted as refunded). A movement does not keep its request's body, so a key first
            // sent with the same amount spelled out is taken for the same request.
            let first = match &key {
                Some(k) => store::earlier_move(
                    &app.db,
                    false,
                    user_id,
                    &provider_key(user_id, k),
                    now_us() - crate::http::idempotency::KEEP_US,
                )
                .await?
                .filter(|e| {
                    e.refund_of.as_deref() == Some(top_up.id.as_str()) && e.status != "failed"
                }),
                None => None,
            };
            match first {
                Some(first) => first.amount,
                None if top_up.amount > top_up.amount_refunded => {
                    top_up.amount - top_up.amount_refunded
                }
                None => {
                    return Err(Error::payment(
                        "refund_exceeds_top_up",
                        "Nothing is left of the top-up to refund.",
                    ));
                }
            }
        }
    };
    let movement = BankMove {
        id: WalletMovementId::generate().as_str().to_owned(),
        account: user_id.to_owned(),
        amount,
        currency: parse_currency(&top_up.currency)?,
        direction: Direction::Out,
        payout: false,
        refund_of: Some((top_up.id, charge)),
    };
    through_bank(app, movement, user_id, key, body_hash).await
}

/// How a payout's id begins (a wallet movement's is `wmv_`): a provider's notification names
/// which it settles by it.
const PAYOUT_PREFIX: &str = "po_";

/// How long o2o waits for the provider to answer a movement.
const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A movement still pending this long after it began (µs) was not seen through (the server
/// stopped, or the provider did not answer in time): [`sweep_movements`] asks the provider what
/// became of it.
pub const MOVEMENT_SETTLES_US: i64 = 60_000_000;

/// Money o2o asks the provider to move: a consumer's wallet top-up or withdrawal (`account`, the
/// user), or a merchant's payout (`account`, the merchant).
#[derive(Clone)]
struct BankMove {
    id: String,
    account: String,
    amount: i64,
    currency: Currency,
    direction: Direction,
    payout: bool,
    /// A refund's top-up: o2o's id for it, and the provider's.
    refund_of: Option<(String, String)>,
}

impl BankMove {
    /// Records it as pending, asked under `request_key`; money going out is held first.
    fn start(&self, app: &AppState, request_key: Option<String>) -> Op {
        if self.payout {
            Op::Payout {
                payout_id: self.id.clone(),
                merchant_id: self.account.clone(),
                amount: self.amount,
                currency: self.currency,
                provider: app.provider.name(),
                request_key,
            }
        } else {
            Op::MoveStart {
                direction: self.direction,
                movement_id: self.id.clone(),
                user_id: self.account.clone(),
                amount: self.amount,
                currency: self.currency,
                provider: app.provider.name(),
                request_key,
                refund_of: self.refund_of.as_ref().map(|(id, _)| id.clone()),
            }
        }
    }

    /// Its kind, as recorded: `top_up`, `withdrawal` or `payout`.
    fn kind(&self) -> &'static str {
        match (self.payout, self.direction) {
            (true, _) => "payout",
            (false, Direction::In) => "top_up",
            (false, Direction::Out) => "withdrawal",
        }
    }

    fn request(&self) -> ChargeRequest {
        ChargeRequest {
            reference: self.id.clone(),
            account: self.account.clone(),
            amount: self.amount,
            currency: self.currency.code().to_owned(),
            direction: self.direction,
            idempotency_key: None,
            refund_of: self.refund_of.as_ref().map(|(_, charge)| charge.clone()),
        }
    }

    /// The provider's word on it: made (with the provider's id for it), or not.
    fn settled(&self, app: &AppState, provider_ref: Option<String>) -> Op {
        if self.payout {
            Op::PayoutSettled {
                payout_id: self.id.clone(),
                merchant_id: self.account.clone(),
                amount: self.amount,
                currency: self.currency,
                provider: app.provider.name(),
                provider_ref,
            }
        } else {
            Op::WalletMove {
                direction: self.direction,
                movement_id: self.id.clone(),
                user_id: self.account.clone(),
                amount: self.amount,
                currency: self.currency,
                provider: app.provider.name(),
                provider_ref,
            }
        }
    }
}

/// Records `movement` as pending (holding money going out), asks the provider to make it, and
/// applies the answer, storing the reply under the caller's key (`scope`, `key`). Once begun it
/// is seen through even if the client goes away meanwhile (the handler's future would be
/// dropped): what the provider is asked is recorded with its answer. A provider that does not
/// answer in time leaves it pending, for [`sweep_movements`].
async fn through_bank(
    app: &AppState,
    movement: BankMove,
    scope: &str,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let (app, scope, body_hash) = (app.clone(), scope.to_owned(), body_hash.to_owned());
    tokio::spawn(async move {
        let _held = app.provider_keys.hold(&scope, key.as_deref()).await;
        if let Some(reply) =
            crate::http::idempotency::lookup(&app.db, &scope, key.as_deref(), &body_hash).await?
        {
            return Ok(reply);
        }
        let request_key = key.as_deref().map(|k| provider_key(&scope, k));
        let mut movement = movement;
        let mut resumed = false;
        if let Some(rk) = &request_key
            && let Some(earlier) = store::earlier_move(
                &app.db,
                movement.payout,
                &movement.account,
                rk,
                now_us() - crate::http::idempotency::KEEP_US,
            )
            .await?
        {
            // An earlier attempt of this request was cut off before it stored its reply (the
            // server stopped, or the bank did not answer in time): settle that one from the
            // bank's record, and answer with it if the bank made it.
            if (
                earlier.kind.as_str(),
                earlier.amount,
                earlier.currency.as_str(),
                earlier.refund_of.as_deref(),
            ) != (
                movement.kind(),
                movement.amount,
                movement.currency.code(),
                movement.refund_of.as_ref().map(|(id, _)| id.as_str()),
            ) {
                return Err(crate::http::idempotency::key_reused());
            }
            match earlier.status.as_str() {
                "succeeded" => {
                    let made = BankMove {
                        id: earlier.id,
                        ..movement
                    };
                    let idem = idem_key(&scope, key, &body_hash);
                    return app
                        .payments
                        .run(made.settled(&app, earlier.provider_ref), idem)
                        .await;
                }
                // Still pending (the bank may yet make it, or be making it for another node's
                // copy): asked again under its own reference and key, holding what it holds, the
                // bank answers with the one it made or makes it now, once.
                "pending" => {
                    movement.id = earlier.id;
                    resumed = true;
                }
                // The bank made none: this attempt asks afresh.
                _ => {}
            }
        }
        if !resumed {
            app.payments
                .run(movement.start(&app, request_key), None)
                .await?;
        }
        let asked = tokio::time::timeout(
            PROVIDER_TIMEOUT,
            ask_bank(&app, &scope, key.as_deref(), movement.request()),
        )
        .await;
        // Only a refusal releases the hold: a movement the provider may still make stays
        // pending, for the provider's notification or the sweep to settle.
        let refused = match asked {
            Ok(Ok(charge)) if charge.status == ChargeStatus::Succeeded => Ok(charge),
            Ok(Ok(charge)) if charge.status == ChargeStatus::Failed => Err(Error::payment(
                "provider_declined",
                "The bank did not make the movement.",
            )),
            Ok(Err(ProviderError::KeyReused)) => Err(crate::http::idempotency::key_reused()),
            Ok(Err(ProviderError::Declined(why))) => Err(Error::payment("provider_declined", why)),
            Ok(_) | Err(_) => return Err(not_answered()),
        };
        let charge = match refused {
            Ok(charge) => charge,
            Err(refused) => {
                app.payments.run(movement.settled(&app, None), None).await?;
                return Err(refused);
            }
        };
        if charge.reference != movement.id {
            // The key was asked before, by a copy of this request on another node or by an
            // earlier attempt that did not see its answer through: the provider answered with
            // that movement, and made none for this one.
            app.payments.run(movement.settled(&app, None), None).await?;
        }
        let idem = idem_key(&scope, key, &body_hash);
        if movement.payout {
            let first = BankMove {
                id: charge.reference.clone(),
                ..movement
            };
            return app
                .payments
                .run(first.settled(&app, Some(charge.provider_ref)), idem)
                .await;
        }
        // The provider's signed notification is what moves the wallet (as with a real provider,
        // whose notification arrives over HTTP; the sandbox hands it over in process).
        let notification = app.provider.notification_for(&charge);
        confirm(&app, &notification, idem).await
    })
    .await
    .map_err(Error::internal)?
}

/// The refusal of a request whose movement the bank has not settled yet: it stays pending.
fn not_answered() -> Error {
    Error::unavailable(
        "provider_unavailable",
        "The bank has not settled it yet. It completes, or its money is released, once the bank does.",
        MOVEMENT_SETTLES_US as u64 / 1_000_000,
    )
}

/// What the provider's record says became of `movement`, once its order is closed: made (with
/// the provider's id for it), not made (`Some(None)`: failed, closed unmade, or unknown to the
/// provider), or nothing certain yet (`None`: still pending there, no answer in time, or a record
/// that does not match o2o's).
async fn bank_record(app: &AppState, movement: &BankMove) -> Option<Option<String>> {
    // Closed first: a reference the provider has not made by now never will be, so a late
    // request for it cannot make it after o2o has released it.
    let found =
        tokio::time::timeout(PROVIDER_TIMEOUT, app.provider.close(movement.request())).await;
    match found {
        Err(_) => {
            tracing::warn!(movement = %movement.id, "the provider did not answer what became of a movement");
            None
        }
        Ok(Ok(charge))
            if (
                charge.account.as_str(),
                charge.amount,
                charge.currency.as_str(),
                charge.direction,
            ) != (
                movement.account.as_str(),
                movement.amount,
                movement.currency.code(),
                movement.direction,
            ) =>
        {
            tracing::error!(movement = %movement.id, "the provider's record of a movement does not match o2o's");
            None
        }
        Ok(Ok(charge)) => match charge.status {
            ChargeStatus::Succeeded => Some(Some(charge.provider_ref)),
            ChargeStatus::Pending => None,
            ChargeStatus::Failed => Some(None),
        },
        Ok(Err(ProviderError::NotFound)) => Some(None),
        Ok(Err(e)) => {
            tracing::warn!(movement = %movement.id, error = %e, "the provider did not say what became of a movement");
            None
        }
    }
}

/// Settles wallet movements and payouts left pending for longer than `older_than_us` (see
/// [`MOVEMENT_SETTLES_US`]) from the provider's own record of them: made, the money moves;
/// unknown to the provider or failed there, the hold is released. Answers how many it settled.
pub async fn sweep_movements(app: &AppState, older_than_us: i64) -> Result<usize> {
    let provider = app.provider.name();
    let before = now_us() - older_than_us;
    let mut n = 0;
    // Page by id through all of them, so that movements the provider keeps answering "pending"
    // do not stay first in line ahead of the rest.
    let mut after = String::new();
    loop {
        let page =
            store::unsettled_movements(&app.db, provider, before, &after, SWEEP_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let whole = page.len() as i64 == SWEEP_PAGE;
        let mut unsettled = Vec::new();
        for m in page {
            // A refund is closed at the provider as it was asked: naming its top-up's charge.
            let refund_of = match m.refund_of {
                Some(top_up) => match store::movement(&app.db, &top_up).await? {
                    Some(t) => t.provider_ref.map(|charge| (top_up, charge)),
                    None => None,
                },
                None => None,
            };
            if let Ok(currency) = Currency::parse(&m.currency) {
                unsettled.push(BankMove {
                    id: m.id,
                    account: m.user_id,
                    amount: m.amount,
                    currency,
                    direction: if m.kind == "top_up" {
                        Direction::In
                    } else {
                        Direction::Out
                    },
                    payout: false,
                    refund_of,
                });
            }
        }
        n += settle_from_bank(app, unsettled).await;
        if !whole {
            break;
        }
    }
    let mut after = String::new();
    loop {
        let page = store::unsettled_payouts(&app.db, provider, before, &after, SWEEP_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let whole = page.len() as i64 == SWEEP_PAGE;
        let unsettled = page
            .into_iter()
            .filter_map(|p| {
                Some(BankMove {
                    currency: Currency::parse(&p.currency).ok()?,
                    id: p.id,
                    account: p.merchant_id,
                    amount: p.amount,
                    direction: Direction::Out,
                    payout: true,
                    refund_of: None,
                })
            })
            .collect();
        n += settle_from_bank(app, unsettled).await;
        if !whole {
            break;
        }
    }
    Ok(n)
}

/// How many unsettled movements (or payouts) the sweep reads at a time.
const SWEEP_PAGE: i64 = 100;

/// Settles each of `unsettled` from the provider's record of it, where that record is certain;
/// answers how many it settled.
async fn settle_from_bank(app: &AppState, unsettled: Vec<BankMove>) -> usize {
    let mut n = 0;
    for movement in unsettled {
        let Some(provider_ref) = bank_record(app, &movement).await else {
            continue;
        };
        let made = provider_ref.is_some();
        match app
            .payments
            .run(movement.settled(app, provider_ref), None)
            .await
        {
            Ok(_) => {
                tracing::info!(movement = %movement.id, made, "an unanswered movement was settled from the provider's record");
                n += 1;
            }
            Err(e) => {
                tracing::warn!(movement = %movement.id, error = %e.message, "settling a movement failed")
            }
        }
    }
    n
}

/// Asks the provider to move money into or out of `request.account`'s bank. The caller's
/// `Idempotency-Key`, if any, goes with the request (see [`provider_key`]): copies of one request on different nodes (which do not wait for each
/// other, see [`crate::http::idempotency::KeyLocks`]), or an earlier attempt that never stored
/// its reply, may reach the provider before any reply is stored, so o2o's own stored reply
/// cannot stop a second charge; the provider answers each with the first charge instead. Its
/// `reference` is then the first one's: record that one.
async fn ask_bank(
    app: &AppState,
    scope: &str,
    key: Option<&str>,
    mut request: ChargeRequest,
) -> std::result::Result<Charge, ProviderError> {
    request.idempotency_key = key.map(|k| provider_key(scope, k));
    if request.refund_of.is_some() {
        app.provider.refund(request).await
    } else {
        app.provider.create(request).await
    }
}

/// The key a request's `Idempotency-Key` is sent to the provider as: in the scope o2o keeps the
/// key in (the caller), and hashed.
pub fn provider_key(scope: &str, key: &str) -> String {
    let mut hex = crate::identity::service::sha256_hex(&format!("{scope}\n{key}"));
    hex.truncate(32);
    hex
}

/// [`ask_bank`], insisting that the provider made the movement: the same key for another request
/// is refused (409), and anything but a movement made is a 402.
pub(crate) async fn charge_bank(
    app: &AppState,
    scope: &str,
    key: Option<&str>,
    request: ChargeRequest,
) -> Result<Charge> {
    let charge = ask_bank(app, scope, key, request)
        .await
        .map_err(|e| match e {
            ProviderError::KeyReused => crate::http::idempotency::key_reused(),
            e => Error::payment("provider_declined", e.to_string()),
        })?;
    if charge.status != ChargeStatus::Succeeded {
        return Err(Error::payment(
            "provider_declined",
            "The bank did not confirm the movement.",
        ));
    }
    Ok(charge)
}

/// Applies a provider's signed notification: credits (or debits) the wallet once.
pub async fn confirm(
    app: &AppState,
    notification: &SignedNotification,
    idem: Option<IdemKey>,
) -> Result<Reply> {
    let charge = app
        .provider
        .verify_notification(notification)
        .map_err(|e| Error::invalid("notification_invalid", e.to_string()))?;
    let declined = || {
        Error::payment(
            "provider_declined",
            "The provider reports the charge did not succeed.",
        )
    };
    let made = match charge.status {
        ChargeStatus::Succeeded => true,
        ChargeStatus::Failed => false,
        ChargeStatus::Pending => return Err(declined()),
    };
    let currency = parse_currency(&charge.currency)?;
    let provider_ref = made.then(|| charge.provider_ref.clone());
    let op = if charge.reference.starts_with(PAYOUT_PREFIX) && charge.direction == Direction::Out {
        Op::PayoutSettled {
            payout_id: charge.reference.clone(),
            merchant_id: charge.account.clone(),
            amount: charge.amount,
            currency,
            provider: app.provider.name(),
            provider_ref,
        }
    } else if charge.reference.starts_with(WalletMovementId::PREFIX) {
        Op::WalletMove {
            direction: charge.direction,
            movement_id: charge.reference.clone(),
            user_id: charge.account.clone(),
            amount: charge.amount,
            currency,
            provider: app.provider.name(),
            provider_ref,
        }
    } else {
        return Err(Error::invalid(
            "notification_invalid",
            "The notification names nothing o2o asked the provider for.",
        ));
    };
    if !made {
        // A withdrawal o2o recorded is released; the caller learns it failed.
        app.payments.run(op, None).await?;
        return Err(declined());
    }
    app.payments.run(op, idem).await
}

/// A consumer's wallet with its latest entries.
pub async fn wallet(db: &Db, user_id: &str, currency: Currency, page: &Page) -> Result<Wallet> {
    let id = accounts::wallet(user_id, currency).id;
    let balances = store::account(db, &id).await?;
    let rows = store::entries(db, &id, page.starting_after.as_deref(), page.fetch_limit()).await?;
    let list = page.finish(rows);
    // The balance moves with the newest entry (on the first page): neither may be one a crash
    // could take back.
    if page.starting_after.is_some() {
        db.durable().await;
    } else {
        db.durable_since_latest(list.data.iter().map(|r| r.created_at))
            .await;
    }
    let entries = list
        .data
        .into_iter()
        .map(|r| {
            let out = r.debit_account == id;
            let kind = match (r.code.as_str(), r.action.as_str()) {
                (_, "pending") => "hold",
                (_, "void_pending") => "release",
                ("payment_capture", _) => "payment",
                (code, _) => code,
            };
            WalletEntry {
                id: r.id,
                kind: kind.to_owned(),
                amount: if out { -r.amount } else { r.amount },
                currency: r.currency,
                reference: r.reference,
                created_at: rfc3339(r.created_at),
            }
        })
        .collect();
    let (balance, held) = balances
        .map(|b| (b.balance - b.pending_out, b.pending_out))
        .unwrap_or((0, 0));
    Ok(Wallet {
        balance,
        held,
        currency: currency.code().to_owned(),
        entries,
        has_more: list.has_more,
    })
}

/// The o2o code a consumer's scanned text names: for an EMVCo payload (the store pay code
/// printed for banks' apps), the code of the o2o URL inside it; otherwise the text's own code
/// (see [`qr_segment`]). A damaged payload names nothing o2o knows.
fn scanned_code(qr: &str) -> String {
    let url = o2o_codes::printed::url_in_emv(qr);
    qr_segment(url.as_deref().unwrap_or(qr)).to_owned()
}

pub fn qr_segment(qr: &str) -> &str {
    let qr = qr.trim();
    let tail = match qr.rfind("/q/") {
        Some(i) => &qr[i + 3..],
        None => qr,
    };
    tail.split(['?', '#', '/']).next().unwrap_or_default()
}

/// `POST /v1/payments` in its three shapes.
pub async fn create_payment(
    app: &AppState,
    principal: &Principal,
    input: CreatePayment,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let amount = parse_amount(input.amount, MAX_PAYMENT)?;
    let currency = parse_currency(&input.currency)?;
    let hold_until = match input.capture.as_deref() {
        None | Some("automatic") => {
            if input.hold_seconds.is_some() {
                return Err(Error::invalid(
                    "hold_seconds_without_manual_capture",
                    "hold_seconds applies to capture: manual only.",
                )
                .param("hold_seconds"));
            }
            None
        }
        Some("manual") => {
            let s = input.hold_seconds.unwrap_or(HOLD_DEFAULT_S);
            if !(HOLD_MIN_S..=HOLD_MAX_S).contains(&s) {
                return Err(Error::invalid(
                    "hold_seconds_out_of_range",
                    format!("hold_seconds must be between {HOLD_MIN_S} and {HOLD_MAX_S}."),
                )
                .param("hold_seconds"));
            }
            Some(now_us() + s * 1_000_000)
        }
        Some(_) => {
            return Err(
                Error::invalid("capture_invalid", "capture must be automatic or manual.")
                    .param("capture"),
            );
        }
    };
    let description = optional_text(input.description, 200, "description")?;
    let order_id = optional_text(input.order_id, 64, "order_id")?;
    let now = now_us();
    let payment = match principal.kind {
        PrincipalKind::Consumer => {
            if input.pay_code.is_some() || input.store_id.is_some() {
                return Err(Error::forbidden(
                    "cashier_only",
                    "Only the merchant's cashier can take a pay code or name a store.",
                ));
            }
            let Some(qr) = input.qr.as_deref() else {
                return Err(Error::invalid(
                    "qr_required",
                    "Scan the store's code: send qr with the scanned text.",
                )
                .param("qr"));
            };
            let source = match input.source.as_deref() {
                None | Some("wallet") => "wallet".to_owned(),
                Some(card) if card.starts_with("crd_") && card.len() <= 64 => card.to_owned(),
                Some(_) => {
                    return Err(Error::invalid(
                        "source_invalid",
                        "source must be wallet or a member card (crd_…).",
                    )
                    .param("source"));
                }
            };
            if qr.len() > 512 {
                return Err(Error::invalid("qr_invalid", "qr is too long.").param("qr"));
            }
            let segment = if qr.trim().starts_with("qr_") {
                let short: Option<(String,)> = app
                    .db
                    .fetch_optional(
                        crate::db::query("SELECT short FROM qr_codes WHERE id = $1")
                            .bind(qr.trim()),
                    )
                    .await?;
                short.map(|s| s.0).unwrap_or_default()
            } else {
                scanned_code(qr)
            };
            let code = crate::codes::service::resolve_code(&app.db, &segment)
                .await?
                .map_err(|f| f.error().param("qr"))?;
            let row = &code.row;
            if row.kind != "store_pay" {
                return Err(Error::invalid(
                    "qr_not_payable",
                    "This code is not a store's pay code.",
                )
                .param("qr"));
            }
            if !row.merchant_takes_payments() {
                return Err(Error::forbidden(
                    "merchant_not_verified",
                    "This merchant cannot take payments yet.",
                ));
            }
            NewPayment {
                id: PaymentId::generate().as_str().to_owned(),
                merchant_id: row.merchant_id.clone(),
                store_id: Some(row.store_id.clone()),
                user_id: Some(principal.id.clone()),
                method: "qr",
                source: Some(source),
                pay_code_hash: None,
                qr_id: Some(row.id.clone()),
                order_id,
                description,
                amount,
                currency,
                hold_until,
                fee_bps: row.merchant_fee_bps,
                business_day: business_day(Some(&row.store_timezone), now),
                staff_id: None,
                coupon_id: match input.coupon.as_deref() {
                    Some(c) => Some(crate::marketing::service::parse_coupon_id(c)?),
                    None => None,
                },
                coupon_holder: None,
            }
        }
        PrincipalKind::Staff | PrincipalKind::ApiKey => {
            let merchant_id = principal.merchant_id.clone().ok_or_else(|| {
                Error::forbidden("merchant_only", "Only a merchant's staff can do this.")
            })?;
            if principal.role.is_none_or(|r| r < Role::Cashier) {
                return Err(Error::forbidden(
                    "insufficient_role",
                    "This needs the cashier role.",
                ));
            }
            if input.qr.is_some() {
                return Err(Error::invalid(
                    "qr_not_allowed",
                    "A cashier takes a pay code or cash; the consumer scans printed codes.",
                )
                .param("qr"));
            }
            let Some(store_id) = input.store_id.as_deref() else {
                return Err(Error::invalid(
                    "store_id_required",
                    "Name the store taking the money.",
                )
                .param("store_id"));
            };
            let tz = crate::stores::service::own_store_timezone(&app.db, &merchant_id, store_id)
                .await?
                .ok_or_else(|| {
                    Error::not_found("store_not_found", "No such store.").param("store_id")
                })?;
            let terms = crate::merchants::service::payment_terms(&app.db, &merchant_id)
                .await?
                .ok_or_else(|| Error::not_found("merchant_not_found", "No such merchant."))?;
            let (method, source, hash) = match (input.pay_code.as_deref(), input.source.as_deref())
            {
                (Some(code), None) => {
                    let code = o2o_codes::paycode::PayCode::parse(code.trim()).map_err(|_| {
                        Error::invalid(
                            "pay_code_invalid",
                            "A pay code is 18 digits starting with 19.",
                        )
                        .param("pay_code")
                    })?;
                    (
                        "pay_code",
                        None,
                        Some(crate::identity::service::sha256_hex(code.as_str())),
                    )
                }
                (None, Some("cash")) => {
                    if hold_until.is_some() {
                        return Err(Error::invalid(
                            "capture_invalid",
                            "Cash is taken at once; it cannot be held.",
                        )
                        .param("capture"));
                    }
                    ("cash", Some("cash".to_owned()), None)
                }
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "source_invalid",
                        "A pay code carries its own source; do not send source with it.",
                    )
                    .param("source"));
                }
                _ => {
                    return Err(Error::invalid(
                        "pay_code_required",
                        "Send the consumer's pay_code, or source: cash.",
                    )
                    .param("pay_code"));
                }
            };
            // Cash too: a listing merchant takes no payments, and one not yet verified takes
            // none through o2o (cash would bring fees and statements with it).
            if !terms.takes_payments() {
                return Err(Error::forbidden(
                    "merchant_not_verified",
                    "This merchant cannot take payments yet.",
                ));
            }
            // At the counter a coupon is its scanned code (the consumer shows it), never an id.
            let coupon = match input.coupon.as_deref() {
                None => None,
                Some(text) if text.trim().starts_with(o2o_codes::token::PREFIX) => Some(
                    crate::codes::service::check_coupon_code(
                        &app.db,
                        &app.keys,
                        &crate::db::MerchantScope::authenticated(merchant_id.clone()),
                        text,
                        "coupon",
                    )
                    .await?,
                ),
                Some(_) => {
                    return Err(Error::invalid(
                        "coupon_code_required",
                        "At the counter, send the coupon's scanned code (O2O:…) as coupon.",
                    )
                    .param("coupon"));
                }
            };
            NewPayment {
                id: PaymentId::generate().as_str().to_owned(),
                merchant_id,
                store_id: Some(store_id.to_owned()),
                user_id: None,
                method,
                source,
                pay_code_hash: hash,
                qr_id: None,
                order_id,
                description,
                amount,
                currency,
                hold_until,
                fee_bps: terms.fee_bps,
                business_day: business_day(Some(&tz), now),
                staff_id: (principal.kind == PrincipalKind::Staff).then(|| principal.id.clone()),
                coupon_id: coupon.as_ref().map(|c| c.coupon_id.clone()),
                coupon_holder: coupon.map(|c| c.user_id),
            }
        }
        _ => {
            return Err(Error::forbidden(
                "payments_forbidden",
                "Only consumers and merchants' cashiers take part in payments.",
            ));
        }
    };
    // A retried key is answered by the batch itself (the stored reply, read with the batch's
    // other keys), so the hot path makes no read of its own for it.
    app.payments
        .run(
            Op::Pay(Box::new(payment)),
            idem_key(&principal.id, key, body_hash),
        )
        .await
}

/// A payment the caller may see: the consumer who paid, or the merchant paid.
pub async fn get_payment(db: &Db, principal: &Principal, id: &str) -> Result<Payment> {
    let row = store::payment(db, id)
        .await?
        .filter(|p| visible(principal, p));
    // Never show a payment a crash could still take back (see `Db::durable`).
    if let Some(p) = &row {
        db.durable_since(p.updated_at).await;
    }
    row.map(|p| p.public())
        .ok_or_else(|| Error::not_found("payment_not_found", "No such payment."))
}

fn visible(principal: &Principal, p: &PaymentRow) -> bool {
    match principal.kind {
        PrincipalKind::Consumer => p.user_id.as_deref() == Some(principal.id.as_str()),
        PrincipalKind::Staff | PrincipalKind::ApiKey => {
            principal.merchant_id.as_deref() == Some(p.merchant_id.as_str())
        }
        PrincipalKind::Operator => true,
        PrincipalKind::Rider => false,
    }
}

/// The caller's payments, newest first (a consumer's own, or a merchant's).
pub async fn list_payments(db: &Db, principal: &Principal, page: &Page) -> Result<List<Payment>> {
    let rows = match (principal.kind, &principal.merchant_id) {
        (PrincipalKind::Consumer, _) => {
            store::payments_of_user(
                db,
                &principal.id,
                page.starting_after.as_deref(),
                page.fetch_limit(),
            )
            .await?
        }
        (PrincipalKind::Staff | PrincipalKind::ApiKey, Some(m)) => {
            store::payments_of_merchant(db, m, page.starting_after.as_deref(), page.fetch_limit())
                .await?
        }
        _ => {
            return Err(Error::forbidden(
                "payments_forbidden",
                "Nothing to list for this caller.",
            ));
        }
    };
    let list = page.finish(rows);
    db.durable_since_latest(list.data.iter().map(|p| p.updated_at))
        .await;
    Ok(List {
        data: list.data.iter().map(PaymentRow::public).collect(),
        has_more: list.has_more,
    })
}

pub fn staff_merchant(principal: &Principal, at_least: Role) -> Result<String> {
    match (principal.kind, &principal.merchant_id, principal.role) {
        (PrincipalKind::Staff | PrincipalKind::ApiKey, Some(m), Some(role)) if role >= at_least => {
            Ok(m.clone())
        }
        (PrincipalKind::Staff | PrincipalKind::ApiKey, Some(_), Some(_)) => Err(Error::forbidden(
            "insufficient_role",
            format!("This needs the {} role or higher.", at_least.as_str()),
        )),
        _ => Err(Error::forbidden(
            "merchant_only",
            "Only a merchant's staff or API key can do this.",
        )),
    }
}

pub async fn capture(
    app: &AppState,
    principal: &Principal,
    payment_id: &str,
    input: CapturePayment,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let merchant_id = staff_merchant(principal, Role::Cashier)?;
    if let Some(a) = input.amount {
        parse_amount(a, MAX_PAYMENT)?;
    }
    app.payments
        .run(
            Op::Capture {
                payment_id: payment_id.to_owned(),
                merchant_id,
                amount: input.amount,
            },
            idem_key(&principal.id, key, body_hash),
        )
        .await
}

pub async fn cancel(
    app: &AppState,
    principal: &Principal,
    payment_id: &str,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let merchant_id = staff_merchant(principal, Role::Cashier)?;
    app.payments
        .run(
            Op::Cancel {
                payment_id: payment_id.to_owned(),
                merchant_id,
            },
            idem_key(&principal.id, key, body_hash),
        )
        .await
}

pub async fn refund(
    app: &AppState,
    principal: &Principal,
    input: CreateRefund,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let merchant_id = staff_merchant(principal, Role::Cashier)?;
    if let Some(a) = input.amount {
        parse_amount(a, MAX_PAYMENT)?;
    }
    let reason = optional_text(input.reason, 200, "reason")?;
    let payment = store::payment(&app.db, &input.payment)
        .await?
        .filter(|p| p.merchant_id == merchant_id)
        .ok_or_else(|| {
            Error::not_found("payment_not_found", "No such payment.").param("payment")
        })?;
    let tz = match &payment.store_id {
        Some(s) => crate::stores::service::own_store_timezone(&app.db, &merchant_id, s).await?,
        None => None,
    };
    app.payments
        .run(
            Op::Refund {
                refund_id: RefundId::generate().as_str().to_owned(),
                payment_id: payment.id,
                merchant_id,
                amount: input.amount,
                reason,
                business_day: business_day(tz.as_deref(), now_us()),
                staff_id: (principal.kind == PrincipalKind::Staff).then(|| principal.id.clone()),
            },
            idem_key(&principal.id, key, body_hash),
        )
        .await
}

pub async fn merchant_balance(
    db: &Db,
    merchant_id: &str,
    currency: Currency,
) -> Result<MerchantBalance> {
    // What is held (for payouts in flight) is not counted.
    let get = |id: String| async move {
        store::account(db, &id)
            .await
            .map(|b| b.map(|b| b.balance - b.pending_out).unwrap_or(0))
    };
    Ok(MerchantBalance {
        merchant_id: merchant_id.to_owned(),
        currency: currency.code().to_owned(),
        available: get(accounts::merchant_available(merchant_id, currency).id).await?,
        pending: get(accounts::merchant_pending(merchant_id, currency).id).await?,
        cash: get(accounts::merchant_cash(merchant_id, currency).id).await?,
    })
}

/// A business day as statements name it: `YYYY-MM-DD`, four digits of a year from 1 on (no
/// sign, no year 0), a real day of that year.
fn is_business_day(day: &str) -> bool {
    let shaped = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped && jiff::civil::Date::strptime("%Y-%m-%d", day).is_ok_and(|d| d.year() >= 1)
}

pub async fn statement(
    db: &Db,
    merchant_id: &str,
    day: &str,
    currency: Currency,
) -> Result<Statement> {
    if !is_business_day(day) {
        return Err(Error::invalid("date_invalid", "The date must be YYYY-MM-DD.").param("date"));
    }
    let pays = store::day_payments(db, merchant_id, day).await?;
    let refunds = store::day_refunds(db, merchant_id, day).await?;
    let code = currency.code();
    let p = pays.iter().find(|p| p.currency == code);
    let r = refunds.iter().find(|r| r.currency == code);
    let gross = p.map(|p| p.gross).unwrap_or(0);
    let fees_charged = p.map(|p| p.fees).unwrap_or(0);
    let refunded = r.map(|r| r.refunds).unwrap_or(0);
    let fee_returned = r.map(|r| r.fee_returned).unwrap_or(0);
    let fees = fees_charged - fee_returned;
    Ok(Statement {
        merchant_id: merchant_id.to_owned(),
        date: day.to_owned(),
        currency: code.to_owned(),
        gross,
        refunds: refunded,
        fees,
        net: gross - refunded - fees,
        count: p.map(|p| p.count).unwrap_or(0),
        refund_count: r.map(|r| r.count).unwrap_or(0),
        cash: p.map(|p| p.cash).unwrap_or(0),
    })
}

/// A statement as CSV (one header line, one row), as the API and the console download it.
pub fn statement_csv(s: &Statement) -> String {
    format!(
        "merchant_id,date,currency,gross,refunds,fees,net,count,refund_count,cash\n{},{},{},{},{},{},{},{},{},{}\n",
        s.merchant_id,
        s.date,
        s.currency,
        s.gross,
        s.refunds,
        s.fees,
        s.net,
        s.count,
        s.refund_count,
        s.cash
    )
}

/// The most payments the counter lists for one day.
pub const COUNTER_LIST_MAX: i64 = 200;

/// Today's payments at one of the caller's stores (the business day in the store's time zone),
/// newest first, at most [`COUNTER_LIST_MAX`].
pub async fn store_payments_today(
    db: &Db,
    principal: &Principal,
    store_id: &str,
) -> Result<Vec<Payment>> {
    let merchant_id = staff_merchant(principal, Role::Cashier)?;
    let tz = crate::stores::service::own_store_timezone(db, &merchant_id, store_id)
        .await?
        .ok_or_else(|| Error::not_found("store_not_found", "No such store.").param("store_id"))?;
    let day = business_day(Some(&tz), now_us());
    let rows =
        store::payments_of_store_day(db, &merchant_id, store_id, &day, COUNTER_LIST_MAX).await?;
    Ok(rows.iter().map(PaymentRow::public).collect())
}

/// Who was paid: the merchant's name and the store's (for receipts).
pub async fn payee_names(db: &Db, payment: &Payment) -> Result<(String, Option<String>)> {
    Ok(
        store::payee_names(db, &payment.merchant_id, payment.store_id.as_deref())
            .await?
            .unwrap_or_default(),
    )
}

/// Checks the whole ledger (see `GET /v1/admin/ledger/verify`).
pub async fn verify(db: &Db) -> Result<Verification> {
    let rows = store::ledger_checks(db).await?;
    let checks: Vec<AccountCheck> = rows
        .into_iter()
        .map(|r| AccountCheck {
            id: r.id,
            currency: r.currency,
            no_overdraft: r.no_overdraft,
            balance: r.balance,
            pending_out: r.pending_out,
            pending_in: r.pending_in,
            computed_balance: r.credits - r.debits,
            computed_pending_out: r.open_out,
            computed_pending_in: r.open_in,
        })
        .collect();
    let transfers = store::transfer_count(db).await?;
    let bad = store::bad_resolutions(db)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect();
    let dups = store::duplicate_movements(db)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect();
    let orphans = store::orphan_transfers(db)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect();
    Ok(Verification::from_checks(
        &checks,
        transfers as u64,
        bad,
        dups,
        orphans,
    ))
}

/// Voids holds past their expiry, every few seconds, through the sequencer.
pub async fn sweep_holds(app: &AppState) -> Result<usize> {
    let lapsed = store::lapsed_holds(&app.db, now_us(), 500).await?;
    let mut n = 0;
    for (id,) in lapsed {
        if app
            .payments
            .run(Op::Expire { payment_id: id }, None)
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Settles a merchant: what it collected (its pending balance) becomes available for payout.
pub async fn settle(app: &AppState, merchant_id: &str, currency: Currency) -> Result<Reply> {
    if crate::merchants::service::payment_terms(&app.db, merchant_id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("merchant_not_found", "No such merchant."));
    }
    app.payments
        .run(
            Op::Settle {
                settlement_id: format!("stl_{}", crate::ids::new_body()),
                merchant_id: merchant_id.to_owned(),
                currency,
                cutoff: None,
            },
            None,
        )
        .await
}

/// Daily settlement (T+1): on the first sweep of each business day in the merchant's time zone
/// (the one its owner set, else its first store's), what it collected before that day began and has not yet settled (its
/// pending balance, less what its coupons cost) becomes available for payout; what is taken
/// since midnight waits for the next day's sweep. Runs hourly, so every time zone's day is met;
/// once per merchant, currency and day however often it runs or on how many nodes (the day is
/// the idempotency key, in a scope of its own that no caller's keys share). One merchant's
/// failure is logged and the others are still settled. Answers how many settlements moved
/// money (made now or found made earlier that day).
pub async fn settlement_sweep(app: &AppState, now: jiff::Timestamp) -> Result<usize> {
    let due: Vec<(String, String)> = app
        .db
        .fetch_all(crate::db::query(
            "SELECT DISTINCT owner_id, currency FROM ledger_accounts \
             WHERE owner_id IS NOT NULL AND ((kind = 'merchant_pending' AND balance > 0) \
             OR (kind = 'merchant_promotion' AND balance < 0)) ORDER BY owner_id, currency",
        ))
        .await?;
    let mut settled = 0;
    for (merchant_id, code) in due {
        let Ok(currency) = Currency::parse(&code) else {
            continue;
        };
        let zone = match crate::stores::service::merchant_zone(&app.db, &merchant_id).await {
            Ok(zone) => zone,
            Err(e) => {
                tracing::warn!(merchant_id, code = %e.code, "daily settlement skipped");
                continue;
            }
        };
        let day = now.to_zoned(zone.clone()).date();
        let Ok(midnight) = day.to_zoned(zone) else {
            tracing::warn!(merchant_id, %day, "daily settlement skipped: no start of day");
            continue;
        };
        let cutoff = midnight.timestamp().as_microsecond();
        let key = IdemKey {
            scope: format!("system:settlement:{merchant_id}"),
            key: format!("{code}:{day}"),
            hash: format!("settlement:{merchant_id}:{code}:{day}"),
        };
        let op = Op::Settle {
            settlement_id: format!("stl_{}", crate::ids::new_body()),
            merchant_id: merchant_id.clone(),
            currency,
            cutoff: Some(cutoff),
        };
        match app.payments.run(op, Some(key)).await {
            Ok(reply) if moved_money(&reply) => settled += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(merchant_id, code = %e.code, "daily settlement failed"),
        }
    }
    Ok(settled)
}

/// Whether a settlement's answer moved money: collected money made available, or coupon costs
/// taken from it.
fn moved_money(reply: &Reply) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&reply.body) else {
        return false;
    };
    ["amount", "promotion_cost"]
        .iter()
        .any(|k| v[k].as_i64().is_some_and(|a| a > 0))
}

/// Pays out part of a merchant's available balance to its bank: held first, then asked of the
/// provider, whose answer posts the hold or releases it (see [`through_bank`]).
pub async fn payout(
    app: &AppState,
    principal: &Principal,
    merchant_id: &str,
    input: WalletMove,
    key: Option<String>,
    body_hash: &str,
) -> Result<Reply> {
    let own = staff_merchant(principal, Role::Owner)?;
    if own != merchant_id {
        return Err(Error::not_found("merchant_not_found", "No such merchant."));
    }
    let payout = BankMove {
        id: format!("{PAYOUT_PREFIX}{}", crate::ids::new_body()),
        account: merchant_id.to_owned(),
        amount: parse_amount(input.amount, MAX_PAYMENT)?,
        currency: parse_currency(&input.currency)?,
        direction: Direction::Out,
        payout: true,
        refund_of: None,
    };
    through_bank(app, payout, &principal.id, key, body_hash).await
}
