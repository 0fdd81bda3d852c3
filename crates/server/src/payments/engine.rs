//! The payments engine: every command that moves money goes through the sequencer and is
//! applied here, in batches, one transaction and one commit per batch.
//!
//! A batch runs in three steps. First it loads, set-based, what its commands touch: their
//! idempotency keys, payments, pay codes and ledger accounts (on PostgreSQL with `FOR UPDATE`,
//! always in the order payments → pay codes → accounts, each by id, so two nodes never
//! deadlock). Accounts as the node's last batch left them may stand in for their read (see
//! `load`); on PostgreSQL such a batch sends its writes alone, as one statement, and leaves its
//! idempotency keys unread: its insert of them fails if one is stored (a retry). Then it
//! applies the commands one by one in memory, against an [`o2o_ledger::Book`]: a command that
//! fails (insufficient funds, a used pay code, an over-refund) changes nothing and answers its
//! error; one that succeeds adds its rows to the batch's writes. Last, the writes go out
//! set-based (the payment rows in one statement, see [`DEFERRED`]; orders, coupons and cards
//! in a few more) and the batch commits; only then is each caller answered and the batch's
//! events published. A batch that lost a race with another node, or found a key it left unread
//! stored, is made again from locked reads (see `run_batch`); if it fails otherwise, every
//! command of the batch is retried alone, so one bad command cannot sink others.

use super::accounts::{self, AccountSpec};
use super::model::{Payment, Refund, WalletBalance, WalletMoved};
use crate::db::columns::{Columns, Kind};
use crate::db::{Backend, Db, DbError, Tx, Value, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::events::{Bus, Published};
use crate::http::Reply;
use crate::ids::{EventId, TransferId};
use o2o_ledger::sequencer::{Applier, Sequencer, SubmitError};
use o2o_ledger::{Account, Action, Book, Currency, Hold, LedgerError, Transfer};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// Commands applied per transaction at most.
const MAX_BATCH: usize = 1_000;

/// The key a write is stored under for idempotent retries.
#[derive(Clone, Debug)]
pub struct IdemKey {
    pub scope: String,
    pub key: String,
    pub hash: String,
}

/// A new payment, checked by the service (amount, currency, merchant, store, fee rate).
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub id: String,
    pub merchant_id: String,
    pub store_id: Option<String>,
    /// Known for the consumer-scans flow; for the pay-code flow it comes from the code.
    pub user_id: Option<String>,
    /// `qr`, `pay_code` or `cash`.
    pub method: &'static str,
    /// `wallet`, `crd_…` or `cash`; for the pay-code flow it comes from the code.
    pub source: Option<String>,
    pub pay_code_hash: Option<String>,
    /// The merchant whose scope scanned the pay code (for `code_wrong_store` checks).
    pub qr_id: Option<String>,
    pub order_id: Option<String>,
    pub description: Option<String>,
    pub amount: i64,
    pub currency: Currency,
    /// `Some(expires_at)` holds the money (capture: manual).
    pub hold_until: Option<i64>,
    pub fee_bps: i64,
    pub business_day: String,
    pub staff_id: Option<String>,
    /// A coupon (`cpn_…`) the payer uses: its discount is paid by the merchant's promotion
    /// account; the payer pays the rest.
    pub coupon_id: Option<String>,
    /// Whose coupon it is, when the cashier scanned its code (a pay-code or cash payment): the
    /// coupon must be theirs, and with a pay code they must be the payer too.
    pub coupon_holder: Option<String>,
}

/// What a command does.
#[derive(Clone, Debug)]
pub enum Op {
    /// A wallet movement recorded before the provider is asked to make it (see
    /// `payments::service::move_wallet`), as `pending`: a withdrawal holds its money first, so
    /// the wallet must hold it (402 otherwise) and the bank is never asked to pay out more.
    MoveStart {
        direction: super::provider::Direction,
        movement_id: String,
        user_id: String,
        amount: i64,
        currency: Currency,
        provider: &'static str,
        /// The key it is asked of the provider under, if the request had one (see
        /// `payments::service::provider_key`): a retry finds it by that.
        request_key: Option<String>,
        /// A refund of a top-up (its movement id): going out, and no more than is left of the
        /// top-up (402 `refund_exceeds_top_up`), which must be the same user's, made, through the
        /// same provider and in the same currency (404 `top_up_not_found` otherwise).
        refund_of: Option<String>,
    },
    /// Money into (`In`, a top-up) or out of (`Out`, a withdrawal) a wallet, as the provider
    /// reports it: made (`provider_ref`, the provider's id for it), or not (`None`), which
    /// releases a withdrawal's hold. A movement not started here (a provider's notification
    /// alone) is applied when made.
    WalletMove {
        direction: super::provider::Direction,
        movement_id: String,
        user_id: String,
        amount: i64,
        currency: Currency,
        provider: &'static str,
        provider_ref: Option<String>,
    },
    Pay(Box<NewPayment>),
    Capture {
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
    },
    Cancel {
        payment_id: String,
        merchant_id: String,
    },
    /// The sweeper voids a lapsed hold.
    Expire {
        payment_id: String,
    },
    Refund {
        refund_id: String,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        reason: Option<String>,
        business_day: String,
        staff_id: Option<String>,
    },
    /// Moves what a merchant has collected (its pending balance, when positive) to available:
    /// all of it, or with a `cutoff` (µs since the epoch; the start of the business day) only
    /// what came in before it, so that what is taken today settles tomorrow (T+1).
    Settle {
        settlement_id: String,
        merchant_id: String,
        currency: Currency,
        cutoff: Option<i64>,
    },
    /// Holds part of a merchant's available balance for a payout to its bank, recorded as
    /// pending before the provider is asked to make it (see `payments::service::payout`).
    Payout {
        payout_id: String,
        merchant_id: String,
        amount: i64,
        currency: Currency,
        provider: &'static str,
        /// As [`Op::MoveStart`]'s.
        request_key: Option<String>,
    },
    /// The provider's word on a payout: made (`provider_ref`), its hold is posted; not made
    /// (`None`), released.
    PayoutSettled {
        payout_id: String,
        merchant_id: String,
        amount: i64,
        currency: Currency,
        provider: &'static str,
        provider_ref: Option<String>,
    },
    /// A change of an order (see [`crate::orders::engine`]).
    Order(Box<crate::orders::engine::OrderOp>),
    /// A consumer claims a coupon (see [`crate::marketing::engine`]).
    Claim(Box<crate::marketing::engine::Claim>),
    /// A member card's top-up, closing or points exchange, or a promotion budget's funding
    /// (see [`crate::members::engine`]).
    Member(Box<crate::members::engine::MemberOp>),
}

impl Op {
    /// Whether the command decides anything on the balance of an account that may go negative
    /// (a merchant's, the platform's, a bank's): how much to settle, whether a payout or a
    /// budget's funding fits. Accounts that may not go negative are checked anyway (see
    /// `SQL_BALANCES`).
    fn consults_open_balances(&self) -> bool {
        match self {
            Op::Settle { .. } | Op::Payout { .. } | Op::Member(_) => true,
            Op::WalletMove { .. }
            | Op::MoveStart { .. }
            | Op::PayoutSettled { .. }
            | Op::Pay(_)
            | Op::Capture { .. }
            | Op::Cancel { .. }
            | Op::Expire { .. }
            | Op::Refund { .. }
            | Op::Order(_)
            | Op::Claim(_) => false,
        }
    }
}

/// One queued command with the channel its answer goes back on.
pub struct Command {
    op: Op,
    idem: Option<IdemKey>,
    reply: oneshot::Sender<Result<Reply>>,
}

/// The handle the rest of the server uses.
#[derive(Clone)]
pub struct Engine {
    seq: Sequencer<Command>,
}

impl Engine {
    /// Starts the sequencer task for `db`, letting at most `queue` commands wait (beyond it
    /// callers get 503 + Retry-After: memory never grows without bound). On SQLite the task
    /// runs on a thread of its own (see [`Sequencer::spawn_dedicated`]) and its batches on a
    /// connection of its own, every statement on that thread (see [`Db::begin_batch`]); it
    /// takes turns with the node's other writes.
    pub fn start(
        db: Db,
        bus: Bus,
        menus: std::sync::Arc<crate::catalog::MenuCache>,
        sold_out: std::sync::Arc<crate::marketing::SoldOut>,
        queue: usize,
    ) -> std::io::Result<Engine> {
        let sqlite = db.backend() == crate::db::Backend::Sqlite;
        let syncer = db
            .wal()
            .map(crate::db::durable::Syncer::spawn)
            .transpose()?;
        let applier = BatchApplier {
            syncer,
            cache: HashMap::new(),
            db,
            bus,
            menus,
            sold_out,
            bumped_at: HashMap::new(),
        };
        let seq = if sqlite {
            Sequencer::spawn_dedicated(applier, queue, MAX_BATCH, "o2o-sequencer")?
        } else {
            Sequencer::spawn(applier, queue, MAX_BATCH)
        };
        Ok(Engine { seq })
    }

    /// Stops the sequencer for shutdown: commands already queued are applied and answered
    /// (on SQLite once their commit is synced), later ones are refused (503), and this returns
    /// when all of that is done.
    pub async fn stop(&self) {
        self.seq.stop().await;
    }

    /// Applies `op` in the next batch and returns its answer (stored under `idem` when given).
    pub async fn run(&self, op: Op, idem: Option<IdemKey>) -> Result<Reply> {
        let (tx, rx) = oneshot::channel();
        let command = Command {
            op,
            idem,
            reply: tx,
        };
        match self.seq.submit(command) {
            Ok(()) => {}
            Err(SubmitError::Full(_)) => {
                metrics::counter!("sequencer_rejected_total").increment(1);
                return Err(Error::unavailable(
                    "overloaded",
                    "Too many payments are waiting; retry in a moment.",
                    1,
                ));
            }
            Err(SubmitError::Stopped(_)) => {
                return Err(Error::unavailable(
                    "shutting_down",
                    "The server is shutting down; retry in a moment.",
                    1,
                ));
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::unavailable(
                "shutting_down",
                "The server is shutting down; retry in a moment.",
                1,
            ))
        })
    }

    /// Commands waiting right now.
    pub fn queued(&self) -> usize {
        self.seq.queued()
    }
}

/// Applies the sequencer's batches, one at a time on both backends.
///
/// On PostgreSQL a batch made from kept accounts is one statement, and the node's CPUs idle
/// while it runs (about a third of the time in `o2o bench checkout` with 64 clients). Sending
/// the next batch's statement before the last one commits was measured, and it was slower:
/// 6.4k–8.9k payments/s against 9.7k–10.3k. There both statements update the account of the
/// one merchant paid (and the platform's fee account, whenever a fee is taken), so the second
/// waits for the first's commit whatever order its parts run in, and the commits, each with
/// its own WAL flush, stay one after the other; and batches made while fewer commands wait
/// were smaller (18 payments against 32), so there were more of those flushes per payment.
/// With many merchants paid at once only the fee account would be shared.
struct BatchApplier {
    db: Db,
    /// SQLite: answers a batch once its commit is on the disk, while the next batch is made
    /// (see [`crate::db::durable`]). PostgreSQL commits durably, so answers go out at once.
    syncer: Option<crate::db::durable::Syncer>,
    bus: Bus,
    /// Told after a commit that raised a catalog version (stock moved).
    menus: std::sync::Arc<crate::catalog::MenuCache>,
    /// Coupon templates known sold out on this node.
    sold_out: std::sync::Arc<crate::marketing::SoldOut>,
    /// When this node last raised each merchant's catalog version.
    bumped_at: HashMap<String, std::time::Instant>,
    /// The accounts as of this node's last commit, so that a batch need not read them again:
    /// exact on SQLite (one node, and this task is the only writer of accounts); on PostgreSQL
    /// as this node left them, checked when written (see `load`). Emptied whenever a batch
    /// fails.
    cache: AccountCache,
}

/// Accounts as committed, by id.
type AccountCache = HashMap<String, Account>;

/// Past this many accounts the cache starts over (memory stays bounded).
const CACHE_MAX: usize = 1_000_000;

impl BatchApplier {
    fn recently_bumped(&mut self) -> HashSet<String> {
        let now = std::time::Instant::now();
        self.bumped_at
            .retain(|_, t| now.duration_since(*t) < std::time::Duration::from_secs(1));
        self.bumped_at.keys().cloned().collect()
    }

    /// Tells the menu cache about raised catalog versions, and the node about sold-out coupons.
    fn bumped(&mut self, after: AfterCommit) {
        for t in after.sold_out {
            self.sold_out.insert(t);
        }
        for (m, v) in after.versions {
            self.menus.changed(&m, v);
            self.bumped_at.insert(m, std::time::Instant::now());
        }
    }
}

impl BatchApplier {
    /// Sends the answers and publishes the events of committed work, once it is durable.
    fn deliver(
        &self,
        answered: Vec<(oneshot::Sender<Result<Reply>>, Result<Reply>)>,
        events: Vec<Published>,
    ) {
        let bus = self.bus.clone();
        let deliver = move || {
            for (reply, answer) in answered {
                let _ = reply.send(answer);
            }
            for e in events {
                bus.publish(e);
            }
        };
        match &self.syncer {
            Some(syncer) => syncer.after_sync(deliver),
            None => deliver(),
        }
    }
}

impl Applier for BatchApplier {
    type Command = Command;

    /// The last batches answered only once durable: waits for their sync (on this thread,
    /// the sequencer's own, which has nothing else left to do).
    async fn close(self) {
        if let Some(syncer) = &self.syncer {
            syncer.finish();
        }
    }

    async fn apply(&mut self, batch: Vec<Command>) {
        let started = std::time::Instant::now();
        let size = batch.len();
        let (ops, replies): (Vec<(Op, Option<IdemKey>)>, Vec<_>) =
            batch.into_iter().map(|c| ((c.op, c.idem), c.reply)).unzip();
        let recent = self.recently_bumped();
        match run_batch(&self.db, &ops, &mut self.cache, &recent).await {
            Ok((answers, events, versions)) => {
                self.bumped(versions);
                self.deliver(replies.into_iter().zip(answers).collect(), events);
            }
            Err(err) => {
                // A storage failure (a conflict with another node creating the same account, a
                // lost connection): apply each command alone, each given a second chance, so
                // one bad command cannot sink the others and a passing race does not fail one.
                tracing::warn!(error = %err, size, "batch failed; applying its commands one by one");
                let (mut answered, mut published) = (Vec::with_capacity(size), Vec::new());
                for (op, reply) in ops.into_iter().zip(replies) {
                    let one = [op];
                    let mut outcome = run_batch(&self.db, &one, &mut self.cache, &recent).await;
                    if outcome.is_err() {
                        outcome = run_batch(&self.db, &one, &mut self.cache, &recent).await;
                    }
                    let answer = match outcome {
                        Ok((mut answers, events, versions)) => {
                            self.bumped(versions);
                            published.extend(events);
                            answers.pop().unwrap_or_else(|| {
                                Err(Error::internal(anyhow::anyhow!("no answer")))
                            })
                        }
                        Err(e) => Err(e.into_error()),
                    };
                    answered.push((reply, answer));
                }
                self.deliver(answered, published);
            }
        }
        metrics::histogram!("sequencer_batch_size").record(size as f64);
        metrics::histogram!("sequencer_batch_seconds").record(started.elapsed().as_secs_f64());
    }
}

/// A failure of the batch as a whole (storage), as opposed to one command's refusal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// On PostgreSQL, a batch made from kept balances declined a command: the decline may rest
    /// on a balance another node has raised since, so the batch is made again from stored ones.
    #[error("a command was declined on kept balances")]
    DeclinedOnKept,
}

impl BatchError {
    /// PostgreSQL refused the batch for another transaction's sake: a balance it started from
    /// has moved (`serialization_failure`, see `SQL_BALANCES`) or a deadlock. Nothing of the
    /// batch was written, and making it again from locked reads will do.
    fn is_lost_race(&self) -> bool {
        matches!(self, BatchError::Db(DbError::Other(sqlx::Error::Database(e)))
            if matches!(e.code().as_deref(), Some("40001" | "40P01")))
    }

    /// PostgreSQL refused the batch's insert of an idempotency key because it is stored: one
    /// left unread (see `load`), or one another node stored meanwhile. Nothing of the batch
    /// was written; made again, the batch reads the key and answers as it did the first time.
    fn found_a_stored_key(&self) -> bool {
        matches!(self, BatchError::Db(DbError::Conflict { constraint })
            if constraint == "idempotency_keys_pkey")
    }

    /// The answer for a command whose batch (of one) failed.
    fn into_error(self) -> Error {
        match self {
            BatchError::Db(DbError::Conflict { constraint }) => {
                tracing::info!(%constraint, "command conflicts with stored state");
                Error::conflict("already_applied", "This was applied already.")
            }
            other => Error::internal(anyhow::anyhow!("{other}")),
        }
    }
}

/// A payment row, as stored (and as the batch's write reads it, by column name).
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize, serde::Serialize)]
pub struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub store_id: Option<String>,
    pub user_id: Option<String>,
    pub method: String,
    pub source: String,
    pub qr_id: Option<String>,
    pub order_id: Option<String>,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub fee: i64,
    pub fee_refunded: i64,
    pub fee_bps: i64,
    pub hold_id: Option<String>,
    pub hold_expires_at: Option<i64>,
    pub business_day: String,
    pub staff_id: Option<String>,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub coupon_id: Option<String>,
    pub discount: i64,
    pub member_discount: i64,
    pub member_tier: Option<String>,
}

impl PaymentRow {
    pub fn public(&self) -> Payment {
        Payment {
            id: self.id.clone(),
            status: self.status.clone(),
            amount: self.amount,
            currency: self.currency.clone(),
            amount_captured: self.amount_captured,
            amount_refunded: self.amount_refunded,
            fee: self.fee - self.fee_refunded,
            merchant_id: self.merchant_id.clone(),
            store_id: self.store_id.clone(),
            source: self.source.clone(),
            method: self.method.clone(),
            consumer_id: self.user_id.clone(),
            order_id: self.order_id.clone(),
            description: self.description.clone(),
            capture_before: match (self.status.as_str(), self.hold_expires_at) {
                ("requires_capture", Some(t)) => Some(rfc3339(t)),
                _ => None,
            },
            coupon_id: self.coupon_id.clone(),
            discount: self.discount,
            member_discount: self.member_discount,
            member_tier: self.member_tier.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct IdemRow {
    scope: String,
    key: String,
    request_hash: String,
    status: i64,
    body: String,
}

/// A wallet movement, as stored (and as the batch's write reads it, by column name).
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize, serde::Serialize)]
pub struct MovementRow {
    pub id: String,
    pub user_id: String,
    /// `top_up` or `withdrawal`.
    pub kind: String,
    pub provider: String,
    /// The provider's id for it, once made.
    pub provider_ref: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// `pending` (the provider has been or is being asked), `succeeded` or `failed`.
    pub status: String,
    /// A withdrawal's hold on the wallet while it is pending (a ledger pending transfer).
    pub hold_id: Option<String>,
    /// The key it was asked of the provider under, if any.
    pub request_key: Option<String>,
    pub created_at: i64,
    /// A refund's top-up (its movement id).
    pub refund_of: Option<String>,
    /// A top-up's refunds, made or being made.
    pub amount_refunded: i64,
}

/// A merchant's payout to its bank, as stored (and as the batch's write reads it).
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize, serde::Serialize)]
pub struct PayoutRow {
    pub id: String,
    pub merchant_id: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// The hold on the merchant's available balance (a ledger pending transfer).
    pub hold_id: String,
    /// The key it was asked of the provider under, if any.
    pub request_key: Option<String>,
    pub created_at: i64,
}

/// How long a withdrawal's or payout's hold lasts in the ledger: far longer than any provider
/// takes to answer, so that the provider's answer (or o2o asking it, see
/// `payments::service::sweep_movements`) settles it, not the clock. Past it, it can only be
/// released.
const MOVE_HOLD_US: i64 = 30 * 24 * 3_600 * 1_000_000;

#[derive(sqlx::FromRow, serde::Deserialize)]
struct PayCodeRow {
    code_hash: String,
    user_id: String,
    source: String,
    valid_from: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct AccountRow {
    id: String,
    currency: String,
    no_overdraft: bool,
    balance: i64,
    pending_out: i64,
    pending_in: i64,
}

/// What the batch writes when it commits.
#[derive(Default)]
struct Writes {
    new_accounts: Vec<AccountSpec>,
    transfers: Vec<TransferRow>,
    new_payments: Vec<String>,
    changed_payments: HashSet<String>,
    refunds: Vec<serde_json::Value>,
    new_movements: Vec<String>,
    changed_movements: HashSet<String>,
    new_payouts: Vec<String>,
    changed_payouts: HashSet<String>,
    pay_codes_used: Vec<serde_json::Value>,
    idem: Vec<serde_json::Value>,
}

/// The batch's in-memory state.
pub(crate) struct State {
    pub(crate) now: i64,
    pub(crate) book: Book,
    pub(crate) payments: HashMap<String, PaymentRow>,
    /// Wallet movements the batch starts or settles.
    movements: HashMap<String, MovementRow>,
    /// Merchant payouts the batch starts or settles.
    payouts: HashMap<String, PayoutRow>,
    pay_codes: HashMap<String, PayCodeRow>,
    stored_idem: HashMap<(String, String), IdemRow>,
    /// Keys answered earlier in this batch: a concurrent retry gets the same answer.
    batch_idem: HashMap<(String, String), (String, Reply)>,
    writes: Writes,
    published: Vec<Published>,
    /// The orders and stock the batch touches.
    pub(crate) orders: crate::orders::engine::Batch,
    /// The coupon templates and coupons the batch touches.
    pub(crate) coupons: crate::marketing::engine::Batch,
    /// The member cards the batch touches.
    pub(crate) members: crate::members::engine::Batch,
    /// For settlements with a cutoff: per account (pending, promotion), the net of what moved
    /// in or out of it since the cutoff and before this batch, settlements left out.
    since_cutoff: HashMap<(String, i64), i64>,
    /// PostgreSQL: the batch's accounts are those this node kept, not read (see `load`).
    on_kept: bool,
    /// Some command decides on the balance of an account that may go negative (see
    /// [`Op::consults_open_balances`]): every balance the batch changes is checked.
    consults_open_balances: bool,
}

/// What the node learns from a committed batch.
#[derive(Default)]
struct AfterCommit {
    /// Catalog versions raised (menus to rebuild).
    versions: Vec<(String, i64)>,
    /// Coupon templates sold out.
    sold_out: Vec<String>,
}

/// A batch's answers, its events, and what the node learns from it.
type Batched = (Vec<Result<Reply>>, Vec<Published>, AfterCommit);

async fn run_batch(
    db: &Db,
    ops: &[(Op, Option<IdemKey>)],
    cache: &mut AccountCache,
    recently_bumped: &HashSet<String>,
) -> std::result::Result<Batched, BatchError> {
    let mut outcome = run_batch_inner(db, ops, Some(cache), recently_bumped).await;
    // A stored key leaves the kept accounts as they were: nothing was written, and they still
    // stand as this node's last batch left them.
    let stored_key = matches!(&outcome, Err(e) if e.found_a_stored_key());
    let again = match &outcome {
        // Nothing was written: a decline made again from stored balances, where a real one is
        // made again. The declined accounts are read anew next time.
        Err(BatchError::DeclinedOnKept) => true,
        // An account moved on another node since this one kept it (see `SQL_BALANCES`), or a
        // deadlock with another node, or an idempotency key left unread was stored: nothing of
        // the batch was written.
        Err(e) => stored_key || e.is_lost_race(),
        Ok(_) => false,
    };
    if again {
        metrics::counter!("sequencer_batches_rerun").increment(1);
        if stored_key {
            metrics::counter!("sequencer_batches_rerun_for_stored_keys").increment(1);
        } else {
            cache.clear();
        }
        outcome = run_batch_inner(db, ops, None, recently_bumped).await;
    }
    match &outcome {
        Ok((_, _, changed, _)) => {
            if cache.len() + changed.len() > CACHE_MAX {
                cache.clear();
            }
            for a in changed {
                cache.insert(a.id.clone(), a.clone());
            }
        }
        Err(_) => cache.clear(),
    }
    outcome.map(|(answers, published, _, versions)| (answers, published, versions))
}

async fn run_batch_inner(
    db: &Db,
    ops: &[(Op, Option<IdemKey>)],
    cache: Option<&AccountCache>,
    recently_bumped: &HashSet<String>,
) -> std::result::Result<
    (
        Vec<Result<Reply>>,
        Vec<Published>,
        Vec<Account>,
        AfterCommit,
    ),
    BatchError,
> {
    let now = now_us();
    let t0 = std::time::Instant::now();
    let mut tx = db.begin_batch().await?;
    let mut state = State {
        now,
        book: Book::new(),
        payments: HashMap::new(),
        pay_codes: HashMap::new(),
        stored_idem: HashMap::new(),
        movements: HashMap::new(),
        payouts: HashMap::new(),
        batch_idem: HashMap::new(),
        writes: Writes::default(),
        published: Vec::new(),
        orders: Default::default(),
        coupons: Default::default(),
        members: Default::default(),
        since_cutoff: HashMap::new(),
        on_kept: false,
        consults_open_balances: ops.iter().any(|(op, _)| op.consults_open_balances()),
    };
    state.orders.recently_bumped = recently_bumped.clone();
    // On PostgreSQL the batch's reads are planned for the rows asked for, each time, and its
    // writes keep their cached plans (see `Db::begin_batch`; in `bench orders` a kept plan's
    // sequential scan of every order took 7 ms of a 13 ms batch).
    load(&mut tx, ops, &mut state, cache).await?;
    tx.batch_reads_done().await?;
    let t1 = std::time::Instant::now();
    let mut answers = Vec::with_capacity(ops.len());
    for (op, idem) in ops {
        answers.push(apply_one(&mut state, op, idem.as_ref()));
    }
    if state.on_kept && answers.iter().any(Result::is_err) {
        return Err(BatchError::DeclinedOnKept);
    }
    let t2 = std::time::Instant::now();
    flush(&mut tx, &mut state).await?;
    let t3 = std::time::Instant::now();
    // Durable once the syncer's next sync returns: the answers wait for it (see `deliver`).
    tx.commit_unsynced().await?;
    let t4 = std::time::Instant::now();
    // Where a batch's time goes (what limits throughput): `o2o bench checkout` prints these.
    for (phase, d) in [
        ("load", t1 - t0),
        ("apply", t2 - t1),
        ("write", t3 - t2),
        ("commit", t4 - t3),
    ] {
        metrics::histogram!("sequencer_phase_seconds", "phase" => phase).record(d.as_secs_f64());
    }
    let mut changed: Vec<Account> = state.book.changed_accounts().cloned().collect();
    for spec in &state.writes.new_accounts {
        if let Some(a) = state.book.account(&spec.id) {
            changed.push(a.clone());
        }
    }
    let after = AfterCommit {
        versions: state.orders.versions,
        sold_out: state.coupons.sold_out,
    };
    Ok((answers, state.published, changed, after))
}

/// A sorted, deduplicated JSON array of ids: the parameter of a batch's set-based reads.
pub(crate) fn ids_json<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = ids.collect();
    v.sort_unstable();
    v.dedup();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

async fn load(
    tx: &mut Tx,
    ops: &[(Op, Option<IdemKey>)],
    state: &mut State,
    cache: Option<&AccountCache>,
) -> std::result::Result<(), BatchError> {
    // Idempotency keys already stored. On PostgreSQL a first attempt leaves them unread for now:
    // it may go out as one statement from kept balances (see the accounts below), and reading
    // them would cost that a round trip. Its insert of the keys then fails if one is stored
    // after all (a retry), and the batch is made again from stored rows, this read first (see
    // `BatchError::found_a_stored_key`).
    let keys_later = tx.backend() == Backend::Postgres && cache.is_some();
    if !keys_later {
        read_stored_keys(tx, ops, state).await?;
    }
    // Orders (before payments: canceling or refunding an order refunds its payments).
    let order_ops: Vec<&crate::orders::engine::OrderOp> = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Order(o) => Some(&**o),
            _ => None,
        })
        .collect();
    let paid_orders: Vec<&str> = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Pay(p) => p.order_id.as_deref(),
            _ => None,
        })
        .collect();
    let order_payments = if order_ops.is_empty() && paid_orders.is_empty() {
        Vec::new()
    } else {
        crate::orders::engine::load_orders(tx, &order_ops, &paid_orders, state).await?
    };
    // Payments touched by captures, cancels, expiries and refunds.
    let payment_ids = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Capture { payment_id, .. }
            | Op::Cancel { payment_id, .. }
            | Op::Expire { payment_id }
            | Op::Refund { payment_id, .. } => Some(payment_id.as_str()),
            _ => None,
        })
        .chain(order_payments.iter().map(String::as_str));
    let rows: Vec<PaymentRow> = rows_by_id(
        tx,
        ids_json(payment_ids),
        (
            "SELECT * FROM payments WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
            "SELECT * FROM payments WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        ),
    )
    .await?;
    for r in rows {
        state.payments.insert(r.id.clone(), r);
    }
    // Wallet movements the provider reports on, and the top-ups of refunds: those refunds start
    // from, and those of the refunds reported on. One statement, so that rows are locked in id
    // order in every batch (a refund's `refund_of` never changes, so it is read unlocked); one
    // `IN` over a `UNION`, which both databases look up by key (an `OR` of two `IN`s is a scan
    // of the table on PostgreSQL).
    let movement_ids = ids_json(ops.iter().filter_map(|(op, _)| match op {
        Op::WalletMove { movement_id, .. } => Some(movement_id.as_str()),
        Op::MoveStart { refund_of, .. } => refund_of.as_deref(),
        _ => None,
    }));
    let rows: Vec<MovementRow> = rows_by_id(
        tx,
        movement_ids,
        (
            "SELECT * FROM wallet_movements WHERE id IN (SELECT value FROM json_each($1) \
             UNION SELECT refund_of FROM wallet_movements WHERE id IN (SELECT value FROM json_each($1))) ORDER BY id",
            "SELECT * FROM wallet_movements WHERE id IN (SELECT json_array_elements_text($1::json) \
             UNION SELECT refund_of FROM wallet_movements WHERE id IN (SELECT json_array_elements_text($1::json))) \
             ORDER BY id FOR UPDATE",
        ),
    )
    .await?;
    for r in rows {
        state.movements.insert(r.id.clone(), r);
    }
    // Payouts the provider reports on.
    let payout_ids = ids_json(ops.iter().filter_map(|(op, _)| match op {
        Op::PayoutSettled { payout_id, .. } => Some(payout_id.as_str()),
        _ => None,
    }));
    let rows: Vec<PayoutRow> = rows_by_id(
        tx,
        payout_ids,
        (
            "SELECT * FROM payouts WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
            "SELECT * FROM payouts WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        ),
    )
    .await?;
    for r in rows {
        state.payouts.insert(r.id.clone(), r);
    }
    // The orders of payments refunded directly, so the order records the refund.
    let refunded_orders: Vec<&str> = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Refund { payment_id, .. } => state.payments.get(payment_id)?.order_id.as_deref(),
            _ => None,
        })
        .filter(|id| !state.orders.orders.contains_key(*id))
        .collect();
    if !refunded_orders.is_empty() {
        let refunded_orders: Vec<String> = refunded_orders.into_iter().map(str::to_owned).collect();
        let refs: Vec<&str> = refunded_orders.iter().map(String::as_str).collect();
        crate::orders::engine::load_orders(tx, &[], &refs, state).await?;
    }
    // Pay codes presented.
    let hashes = ids_json(ops.iter().filter_map(|(op, _)| match op {
        Op::Pay(p) => p.pay_code_hash.as_deref(),
        _ => None,
    }));
    if hashes != "[]" {
        let rows: Vec<PayCodeRow> = tx
            .fetch_all_for(
                "SELECT code_hash, user_id, source, valid_from, expires_at, used_at FROM pay_codes \
                 WHERE code_hash IN (SELECT value FROM json_each($1)) ORDER BY code_hash",
                "SELECT code_hash, user_id, source, valid_from, expires_at, used_at FROM pay_codes \
                 WHERE code_hash IN (SELECT json_array_elements_text($1::json)) ORDER BY code_hash FOR UPDATE",
                vec![Value::from(hashes)],
            )
            .await?;
        for r in rows {
            state.pay_codes.insert(r.code_hash.clone(), r);
        }
    }
    // Coupons used or given back, their templates, and the templates claimed.
    let claims: Vec<&crate::marketing::engine::Claim> = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Claim(c) => Some(&**c),
            Op::Member(m) => crate::members::engine::claim_of(m),
            _ => None,
        })
        .collect();
    let mut coupon_ids: Vec<&str> =
        ops.iter()
            .filter_map(|(op, _)| match op {
                Op::Pay(p) => crate::marketing::engine::coupon_of(p),
                Op::Order(o) => crate::orders::engine::payment_of(o)
                    .and_then(crate::marketing::engine::coupon_of),
                _ => None,
            })
            .collect();
    coupon_ids.extend(
        state
            .payments
            .values()
            .filter_map(|p| p.coupon_id.as_deref()),
    );
    let coupon_ids: Vec<String> = coupon_ids.into_iter().map(str::to_owned).collect();
    // Member cards paid from, topped up, closed or refunded to (before coupons: rows are locked
    // cards first, then coupons, then templates, in every batch), and the coupons of the tiers
    // those cards may move up into.
    crate::members::engine::load(tx, ops, state).await?;
    let grants = crate::members::engine::possible_grants(state);
    if !claims.is_empty() || !coupon_ids.is_empty() || !grants.is_empty() {
        let refs: Vec<&str> = coupon_ids.iter().map(String::as_str).collect();
        crate::marketing::engine::load(tx, &claims, &grants, &refs, state).await?;
    }
    // Stock the batch's orders reserve or release.
    if !order_ops.is_empty() {
        crate::orders::engine::load_stock(tx, &order_ops, state).await?;
    }
    // Ledger accounts: every account a command may touch, created when first needed.
    let mut specs: HashMap<String, AccountSpec> = HashMap::new();
    for (op, _) in ops {
        for spec in accounts_of(op, state) {
            specs.entry(spec.id.clone()).or_insert(spec);
        }
    }
    // The accounts as this node last committed them, where they may stand in for a read. On
    // SQLite they are exact (this node's sequencer is the only writer), so any of them do. On
    // PostgreSQL another node may have moved them since: they stand in only for a batch that
    // has read nothing and finds every account it needs kept, which then sends its writes as
    // one statement that checks each balance a decision rested on (see `SQL_BALANCES`): one
    // round trip instead of five. Otherwise the batch reads and locks them all; so does one
    // that decides on an account that may go negative (a settlement may decide to move
    // nothing, and a balance it does not change is not checked).
    if let Some(cache) = cache
        && (tx.backend() == Backend::Sqlite
            || (!tx.has_begun()
                && !state.consults_open_balances
                && specs.keys().all(|id| cache.contains_key(id))))
    {
        // A decline made from them may be wrong: see `BatchError::DeclinedOnKept`.
        state.on_kept = tx.backend() == Backend::Postgres;
        specs.retain(|id, _| match cache.get(id) {
            Some(a) => {
                state.book.load_account(a.clone());
                false
            }
            None => true,
        });
    } else if keys_later {
        // Not one statement after all: the keys are read with the rest.
        read_stored_keys(tx, ops, state).await?;
    }
    if !specs.is_empty() {
        let ids = ids_json(specs.keys().map(String::as_str));
        let rows: Vec<AccountRow> = tx
            .fetch_all_for(
                "SELECT id, currency, no_overdraft, balance, pending_out, pending_in FROM ledger_accounts \
                 WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
                "SELECT id, currency, no_overdraft, balance, pending_out, pending_in FROM ledger_accounts \
                 WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
                vec![Value::from(ids)],
            )
            .await?;
        for r in rows {
            specs.remove(&r.id);
            let Ok(currency) = Currency::parse(&r.currency) else {
                continue;
            };
            state.book.load_account(Account {
                id: r.id,
                currency,
                no_overdraft: r.no_overdraft,
                balance: r.balance,
                pending_out: r.pending_out,
                pending_in: r.pending_in,
            });
        }
        // Missing accounts that may be created on first use (cards may not: the membership
        // capability opens them).
        for (_, spec) in specs {
            if matches!(spec.kind, accounts::Kind::Card | accounts::Kind::CardBonus) {
                continue;
            }
            state.book.load_account(Account::new(
                spec.id.clone(),
                spec.currency,
                spec.no_overdraft,
            ));
            state.writes.new_accounts.push(spec);
        }
    }
    // What settlements with a cutoff must leave for the next day. After the accounts: on
    // PostgreSQL their rows are locked now, so no other node adds to them until this commits.
    for (op, key) in ops {
        if let Op::Settle {
            merchant_id,
            currency,
            cutoff: Some(cutoff),
            ..
        } = op
        {
            // Already made that day (the sweep runs hourly): the stored answer is replayed.
            if key.as_ref().is_some_and(|k| {
                state
                    .stored_idem
                    .contains_key(&(k.scope.clone(), k.key.clone()))
            }) {
                continue;
            }
            for spec in [
                accounts::merchant_pending(merchant_id, *currency),
                accounts::merchant_promotion(merchant_id, *currency),
            ] {
                let key = (spec.id, *cutoff);
                if state.since_cutoff.contains_key(&key) {
                    continue;
                }
                let net = net_since(tx, &key.0, *cutoff).await?;
                state.since_cutoff.insert(key, net);
            }
        }
    }
    // Open holds of the loaded withdrawals.
    for m in state.movements.values() {
        if let (Some(hold_id), "pending") = (&m.hold_id, m.status.as_str())
            && let Ok(currency) = Currency::parse(&m.currency)
        {
            state.book.load_hold(Hold {
                id: hold_id.clone(),
                debit: accounts::wallet(&m.user_id, currency).id,
                credit: accounts::bank(&m.provider, currency).id,
                amount: m.amount,
                currency,
                expires_at: m.created_at + MOVE_HOLD_US,
            });
        }
    }
    // Open holds of the loaded payouts.
    for p in state.payouts.values() {
        if p.status == "pending"
            && let Ok(currency) = Currency::parse(&p.currency)
        {
            state.book.load_hold(Hold {
                id: p.hold_id.clone(),
                debit: accounts::merchant_available(&p.merchant_id, currency).id,
                credit: accounts::bank(&p.provider, currency).id,
                amount: p.amount,
                currency,
                expires_at: p.created_at + MOVE_HOLD_US,
            });
        }
    }
    // Open holds of the loaded payments.
    for p in state.payments.values() {
        if let (Some(hold_id), Some(expires_at), "requires_capture") =
            (&p.hold_id, p.hold_expires_at, p.status.as_str())
            && let Ok(currency) = Currency::parse(&p.currency)
            && let Some(debit) = source_account(p)
        {
            state.book.load_hold(Hold {
                id: hold_id.clone(),
                debit: debit.id,
                credit: accounts::merchant_pending(&p.merchant_id, currency).id,
                amount: p.amount,
                currency,
                expires_at,
            });
        }
    }
    Ok(())
}

/// The rows of `ids` (a JSON array, see [`ids_json`]) read by `sql` (SQLite's, and PostgreSQL's,
/// which locks them), none if there are no ids.
async fn rows_by_id<T: crate::db::Record>(
    tx: &mut Tx,
    ids: String,
    sql: (&'static str, &'static str),
) -> std::result::Result<Vec<T>, BatchError> {
    if ids == "[]" {
        return Ok(Vec::new());
    }
    Ok(tx
        .fetch_all_for(sql.0, sql.1, vec![Value::from(ids)])
        .await?)
}

/// The batch's idempotency keys that are stored already, with their answers.
async fn read_stored_keys(
    tx: &mut Tx,
    ops: &[(Op, Option<IdemKey>)],
    state: &mut State,
) -> std::result::Result<(), BatchError> {
    let keys: Vec<serde_json::Value> = ops
        .iter()
        .filter_map(|(_, k)| k.as_ref())
        .map(|k| json!({"s": k.scope, "k": k.key}))
        .collect();
    if !keys.is_empty() {
        let rows: Vec<IdemRow> = tx
            .fetch_all_for(
                "SELECT i.scope, i.key, i.request_hash, i.status, i.body FROM idempotency_keys i \
                 JOIN json_each($1) j ON i.scope = json_extract(j.value, '$.s') AND i.key = json_extract(j.value, '$.k')",
                "SELECT i.scope, i.key, i.request_hash, CAST(i.status AS BIGINT) AS status, i.body FROM idempotency_keys i \
                 JOIN json_to_recordset($1::json) AS j(s text, k text) ON i.scope = j.s AND i.key = j.k",
                vec![Value::from(serde_json::to_string(&keys)?)],
            )
            .await?;
        for r in rows {
            state
                .stored_idem
                .insert((r.scope.clone(), r.key.clone()), r);
        }
    }
    Ok(())
}

/// Transfer codes that settle (move collected money on): what a settlement with a cutoff leaves
/// behind is what came in since the cutoff other than these.
const SETTLEMENT_CODES: [&str; 2] = ["settlement", "promotion_settlement"];

/// The net of posted money into `account` (credits less debits) since `cutoff`, settlements
/// left out. Transfer ids sort by creation time, so the account's index is read from a minute
/// before the cutoff on, and the exact time decides.
async fn net_since(
    tx: &mut Tx,
    account: &str,
    cutoff: i64,
) -> std::result::Result<i64, BatchError> {
    let from = format!(
        "{}{}",
        TransferId::PREFIX,
        crate::ids::body_at(cutoff / 1_000 - 60_000)
    );
    let (net,): (i64,) = tx
        .fetch_one(
            crate::db::query(
                "SELECT CAST(COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE credit_account = $1 AND id >= $2 \
                   AND created_at >= $3 AND action IN ('post', 'post_pending') AND code NOT IN ($4, $5)), 0) \
                 - COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE debit_account = $1 AND id >= $2 \
                   AND created_at >= $3 AND action IN ('post', 'post_pending') AND code NOT IN ($4, $5)), 0) AS BIGINT)",
            )
            .bind(account.to_owned())
            .bind(from)
            .bind(cutoff)
            .bind(SETTLEMENT_CODES[0])
            .bind(SETTLEMENT_CODES[1]),
        )
        .await?;
    Ok(net)
}

/// The account a payment's money came from.
fn source_account(p: &PaymentRow) -> Option<AccountSpec> {
    let currency = Currency::parse(&p.currency).ok()?;
    match p.source.as_str() {
        "wallet" => Some(accounts::wallet(p.user_id.as_deref()?, currency)),
        "cash" => Some(accounts::drawer(p.store_id.as_deref()?, currency)),
        card if card.starts_with("crd_") => Some(accounts::card(card, currency)),
        _ => None,
    }
}

/// Who pays and from where: from the pay code when one was presented, else from the command.
pub(crate) fn payer_and_source<'a>(
    state: &'a State,
    p: &'a NewPayment,
) -> (Option<&'a str>, Option<&'a str>) {
    match &p.pay_code_hash {
        Some(h) => match state.pay_codes.get(h) {
            Some(code) => (Some(code.user_id.as_str()), Some(code.source.as_str())),
            None => (None, None),
        },
        None => (p.user_id.as_deref(), p.source.as_deref()),
    }
}

fn accounts_of(op: &Op, state: &State) -> Vec<AccountSpec> {
    match op {
        Op::Member(m) => crate::members::engine::accounts_of(m),
        Op::Settle {
            merchant_id,
            currency,
            ..
        } => vec![
            accounts::merchant_pending(merchant_id, *currency),
            accounts::merchant_available(merchant_id, *currency),
            accounts::merchant_promotion(merchant_id, *currency),
        ],
        Op::Claim(_) => vec![],
        Op::Payout {
            merchant_id,
            currency,
            provider,
            ..
        }
        | Op::PayoutSettled {
            merchant_id,
            currency,
            provider,
            ..
        } => vec![
            accounts::merchant_available(merchant_id, *currency),
            accounts::bank(provider, *currency),
        ],
        Op::WalletMove {
            user_id,
            currency,
            provider,
            ..
        }
        | Op::MoveStart {
            user_id,
            currency,
            provider,
            ..
        } => vec![
            accounts::bank(provider, *currency),
            accounts::wallet(user_id, *currency),
        ],
        Op::Order(o) => {
            if let Some(p) = crate::orders::engine::payment_of(o) {
                return accounts_of(&Op::Pay(Box::new(p.clone())), state);
            }
            let Some(order) = crate::orders::engine::refundable_order(o)
                .and_then(|id| state.orders.orders.get(id))
            else {
                return vec![];
            };
            let mut out = Vec::new();
            for pid in &order.payments {
                out.extend(accounts_of(
                    &Op::Refund {
                        refund_id: String::new(),
                        payment_id: pid.clone(),
                        merchant_id: String::new(),
                        amount: None,
                        reason: None,
                        business_day: String::new(),
                        staff_id: None,
                    },
                    state,
                ));
            }
            out
        }
        Op::Pay(p) => {
            let c = p.currency;
            let mut out = vec![
                accounts::merchant_pending(&p.merchant_id, c),
                accounts::platform_fees(c),
            ];
            if p.coupon_id.is_some() {
                out.push(accounts::merchant_promotion(&p.merchant_id, c));
            }
            let (user, source) = match &p.pay_code_hash {
                Some(h) => match state.pay_codes.get(h) {
                    Some(code) => (Some(code.user_id.as_str()), Some(code.source.as_str())),
                    None => (None, None),
                },
                None => (p.user_id.as_deref(), p.source.as_deref()),
            };
            match source {
                Some("cash") => {
                    if let Some(store) = &p.store_id {
                        out.push(accounts::drawer(store, c));
                    }
                    out.push(accounts::merchant_cash(&p.merchant_id, c));
                }
                Some("wallet") => {
                    if let Some(u) = user {
                        out.push(accounts::wallet(u, c));
                    }
                }
                Some(card) if card.starts_with("crd_") => {
                    out.push(accounts::card(card, c));
                    out.push(accounts::card_bonus(card, c));
                }
                _ => {}
            }
            out
        }
        Op::Capture { payment_id, .. }
        | Op::Cancel { payment_id, .. }
        | Op::Expire { payment_id }
        | Op::Refund { payment_id, .. } => {
            let Some(p) = state.payments.get(payment_id) else {
                return vec![];
            };
            let Ok(c) = Currency::parse(&p.currency) else {
                return vec![];
            };
            let mut out = vec![
                accounts::merchant_pending(&p.merchant_id, c),
                accounts::platform_fees(c),
            ];
            if p.source == "cash" {
                out.push(accounts::merchant_cash(&p.merchant_id, c));
            }
            if p.coupon_id.is_some() {
                out.push(accounts::merchant_promotion(&p.merchant_id, c));
            }
            out.extend(source_account(p));
            out.extend(crate::members::engine::refund_accounts(p));
            out
        }
    }
}

fn payment_declined(code: &'static str, message: &'static str) -> Error {
    Error::payment(code, message)
}

fn ledger_error(e: LedgerError) -> Error {
    match e {
        LedgerError::InsufficientFunds(_) => payment_declined(
            "insufficient_funds",
            "There is not enough money for this payment.",
        ),
        LedgerError::HoldExpired(_) => payment_declined(
            "hold_expired",
            "The hold has lapsed; the money was released. Take a new payment.",
        ),
        LedgerError::HoldNotOpen(_) => Error::conflict(
            "payment_not_capturable",
            "This payment is not awaiting capture.",
        ),
        LedgerError::ExceedsHold => Error::invalid(
            "amount_exceeds_hold",
            "You can capture at most the amount held.",
        )
        .param("amount"),
        LedgerError::AccountMissing(_) => {
            Error::not_found("card_not_found", "No such member card for this merchant.")
                .param("source")
        }
        LedgerError::Overflow => {
            Error::invalid("amount_too_large", "The amount is too large.").param("amount")
        }
        other => Error::internal(anyhow::anyhow!("ledger refused: {other}")),
    }
}

fn apply_one(state: &mut State, op: &Op, idem: Option<&IdemKey>) -> Result<Reply> {
    if let Some(k) = idem {
        let id = (k.scope.clone(), k.key.clone());
        if let Some(stored) = state.stored_idem.get(&id) {
            if stored.request_hash != k.hash {
                return Err(crate::http::idempotency::key_reused());
            }
            return Ok(Reply {
                status: stored.status as u16,
                body: stored.body.clone(),
            });
        }
        if let Some((hash, reply)) = state.batch_idem.get(&id) {
            if *hash != k.hash {
                return Err(crate::http::idempotency::key_reused());
            }
            return Ok(Reply {
                status: reply.status,
                body: reply.body.clone(),
            });
        }
    }
    let reply = match op {
        Op::MoveStart {
            direction,
            movement_id,
            user_id,
            amount,
            currency,
            provider,
            request_key,
            refund_of,
        } => move_start(
            state,
            movement_id,
            user_id,
            *amount,
            *currency,
            provider,
            *direction == super::provider::Direction::In,
            request_key.clone(),
            refund_of.as_deref(),
        )?,
        Op::WalletMove {
            direction,
            movement_id,
            user_id,
            amount,
            currency,
            provider,
            provider_ref,
        } => wallet_move(
            state,
            movement_id,
            user_id,
            *amount,
            *currency,
            provider,
            provider_ref.as_deref(),
            *direction == super::provider::Direction::In,
        )?,
        Op::Pay(p) => pay(state, p)?,
        Op::Order(o) => crate::orders::engine::apply(state, o)?,
        Op::Claim(c) => crate::marketing::engine::claim(state, c)?,
        Op::Member(m) => crate::members::engine::apply(state, m)?,
        Op::Capture {
            payment_id,
            merchant_id,
            amount,
        } => capture(state, payment_id, merchant_id, *amount)?,
        Op::Cancel {
            payment_id,
            merchant_id,
        } => release(state, payment_id, Some(merchant_id), "canceled")?,
        Op::Expire { payment_id } => release(state, payment_id, None, "expired")?,
        Op::Settle {
            settlement_id,
            merchant_id,
            currency,
            cutoff,
        } => settle(state, settlement_id, merchant_id, *currency, *cutoff)?,
        Op::Payout {
            payout_id,
            merchant_id,
            amount,
            currency,
            provider,
            request_key,
        } => payout(
            state,
            payout_id,
            merchant_id,
            *amount,
            *currency,
            provider,
            request_key.clone(),
        )?,
        Op::PayoutSettled {
            payout_id,
            merchant_id,
            amount,
            currency,
            provider,
            provider_ref,
        } => payout_settled(
            state,
            payout_id,
            merchant_id,
            *amount,
            *currency,
            provider,
            provider_ref.as_deref(),
        )?,
        Op::Refund {
            refund_id,
            payment_id,
            merchant_id,
            amount,
            reason,
            business_day,
            staff_id,
        } => refund(
            state,
            refund_id,
            payment_id,
            merchant_id,
            *amount,
            reason.clone(),
            business_day,
            staff_id.clone(),
        )?,
    };
    if let Some(k) = idem {
        state.writes.idem.push(json!({
            "scope": k.scope, "key": k.key, "request_hash": k.hash,
            "status": i64::from(reply.status), "body": reply.body, "created_at": state.now,
        }));
        state.batch_idem.insert(
            (k.scope.clone(), k.key.clone()),
            (
                k.hash.clone(),
                Reply {
                    status: reply.status,
                    body: reply.body.clone(),
                },
            ),
        );
    }
    Ok(reply)
}

/// A transfer row, as the batch's write reads it (by column name).
#[derive(serde::Serialize)]
struct TransferRow {
    id: String,
    debit_account: String,
    credit_account: String,
    amount: i64,
    currency: &'static str,
    action: &'static str,
    code: &'static str,
    reference: String,
    pending_id: Option<String>,
    expires_at: Option<i64>,
    created_at: i64,
}

fn transfer_row(t: &Transfer, now: i64) -> TransferRow {
    let (pending_id, expires_at) = match &t.action {
        Action::Pending { expires_at } => (None, Some(*expires_at)),
        Action::PostPending { pending_id } | Action::VoidPending { pending_id } => {
            (Some(pending_id.clone()), None)
        }
        Action::Post => (None, None),
    };
    TransferRow {
        id: t.id.clone(),
        debit_account: t.debit.clone(),
        credit_account: t.credit.clone(),
        amount: t.amount,
        currency: t.currency.code(),
        action: t.action.as_str(),
        code: t.code,
        reference: t.reference.clone(),
        pending_id,
        expires_at,
        created_at: now,
    }
}

/// An outbox row, as the batch's write reads it (by column name): the batch's events are its
/// outbox rows, written from what it publishes after the commit.
#[derive(serde::Serialize)]
struct EventRow<'a> {
    id: &'a str,
    merchant_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a str,
    created_at: i64,
}

impl<'a> EventRow<'a> {
    fn of(e: &'a Published) -> EventRow<'a> {
        EventRow {
            id: &e.id,
            merchant_id: &e.merchant_id,
            kind: &e.kind,
            data: e.data.get(),
            created_at: e.created_at,
        }
    }
}

/// Applies a linked chain to the book and records its transfers for the batch's write.
pub(crate) fn post_chain(state: &mut State, chain: &[Transfer]) -> Result<()> {
    state
        .book
        .apply(chain, state.now)
        .map_err(|(_, e)| ledger_error(e))?;
    for t in chain {
        state.writes.transfers.push(transfer_row(t, state.now));
    }
    Ok(())
}

fn transfer(
    debit: &AccountSpec,
    credit: &AccountSpec,
    amount: i64,
    currency: Currency,
    action: Action,
    code: &'static str,
    reference: &str,
) -> Transfer {
    Transfer {
        id: TransferId::generate().as_str().to_owned(),
        debit: debit.id.clone(),
        credit: credit.id.clone(),
        amount,
        currency,
        action,
        code,
        reference: reference.to_owned(),
    }
}

pub(crate) fn event<T: serde::Serialize + ?Sized>(
    state: &mut State,
    merchant_id: &str,
    store_id: Option<&str>,
    kind: &'static str,
    data: &T,
) {
    // Serialized once, straight to text: the outbox row is written from it (see `write_rows`).
    event_json(state, merchant_id, store_id, kind, crate::events::raw(data));
}

/// [`event`] with its object serialized already (one object published as several events).
pub(crate) fn event_json(
    state: &mut State,
    merchant_id: &str,
    store_id: Option<&str>,
    kind: &'static str,
    data: Box<serde_json::value::RawValue>,
) {
    state.published.push(Published::new(
        EventId::generate().as_str().to_owned(),
        merchant_id.to_owned(),
        store_id.map(str::to_owned),
        kind.into(),
        data,
        state.now,
    ));
}

/// The JSON text of the event the batch made last.
pub(crate) fn last_event_json(state: &State) -> Option<&str> {
    state.published.last().map(|e| e.data.get())
}

/// How many events the batch has made so far: a mark to take them back to
/// ([`take_back_events`]).
pub(crate) fn events_made(state: &State) -> usize {
    state.published.len()
}

/// Takes back the events made since `mark` (see [`events_made`]): a command that failed after
/// making them publishes nothing.
pub(crate) fn take_back_events(state: &mut State, mark: usize) {
    state.published.truncate(mark);
}

/// An event's object with one more field beside its own.
#[derive(serde::Serialize)]
struct With<'a, T: serde::Serialize, E: serde::Serialize> {
    #[serde(flatten)]
    object: &'a T,
    #[serde(flatten)]
    extra: E,
}

fn wallet_balance(state: &State, user_id: &str, currency: Currency) -> WalletBalance {
    let acc = state.book.account(&accounts::wallet(user_id, currency).id);
    WalletBalance {
        balance: acc.map(Account::available).unwrap_or(0),
        held: acc.map(|a| a.pending_out).unwrap_or(0),
        currency: currency.code().to_owned(),
    }
}

/// Records a wallet movement before the provider is asked for it; a withdrawal holds its money.
#[allow(clippy::too_many_arguments)]
fn move_start(
    state: &mut State,
    movement_id: &str,
    user_id: &str,
    amount: i64,
    currency: Currency,
    provider: &'static str,
    top_up: bool,
    request_key: Option<String>,
    refund_of: Option<&str>,
) -> Result<Reply> {
    if let Some(top_up_id) = refund_of {
        // What is left of the top-up: checked here, where refunds of it take turns.
        let left = state
            .movements
            .get(top_up_id)
            .filter(|t| {
                !top_up
                    && t.kind == "top_up"
                    && t.status == "succeeded"
                    && t.user_id == user_id
                    && t.currency == currency.code()
                    && t.provider == provider
            })
            .map(|t| t.amount - t.amount_refunded)
            .ok_or_else(|| Error::not_found("top_up_not_found", "No such top-up to refund."))?;
        if amount > left {
            return Err(payment_declined(
                "refund_exceeds_top_up",
                "That is more than is left of the top-up to refund.",
            ));
        }
    }
    let codes = MoveCodes::of(refund_of.is_some());
    let hold_id = if top_up {
        None
    } else {
        let t = transfer(
            &accounts::wallet(user_id, currency),
            &accounts::bank(provider, currency),
            amount,
            currency,
            Action::Pending {
                expires_at: state.now + MOVE_HOLD_US,
            },
            codes.hold,
            movement_id,
        );
        let id = t.id.clone();
        post_chain(state, &[t]).map_err(withdrawal_error)?;
        Some(id)
    };
    if let Some(top_up_id) = refund_of {
        refunding(state, top_up_id, amount)?;
    }
    let mut row = MovementRow::pending(
        movement_id,
        user_id,
        top_up,
        provider,
        amount,
        currency,
        hold_id,
        state.now,
    );
    row.request_key = request_key;
    row.refund_of = refund_of.map(str::to_owned);
    state.writes.new_movements.push(row.id.clone());
    state.movements.insert(row.id.clone(), row);
    Reply::created(&WalletMoved {
        id: movement_id.to_owned(),
        wallet: wallet_balance(state, user_id, currency),
    })
}

/// The transfer codes of a movement going out: a withdrawal's, or a top-up refund's.
struct MoveCodes {
    hold: &'static str,
    made: &'static str,
    released: &'static str,
}

impl MoveCodes {
    fn of(refund: bool) -> MoveCodes {
        if refund {
            MoveCodes {
                hold: "top_up_refund_hold",
                made: "top_up_refund",
                released: "top_up_refund_released",
            }
        } else {
            MoveCodes {
                hold: "withdrawal_hold",
                made: "withdrawal",
                released: "withdrawal_released",
            }
        }
    }
}

/// Counts `amount` more (less, if negative) of a top-up as refunded or being refunded.
fn refunding(state: &mut State, top_up_id: &str, amount: i64) -> Result<()> {
    // The batch loads a refund's top-up with it (see `load`).
    let t = state
        .movements
        .get_mut(top_up_id)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a refund's top-up was not loaded")))?;
    t.amount_refunded += amount;
    state.writes.changed_movements.insert(top_up_id.to_owned());
    Ok(())
}

impl MovementRow {
    #[allow(clippy::too_many_arguments)]
    fn pending(
        id: &str,
        user_id: &str,
        top_up: bool,
        provider: &str,
        amount: i64,
        currency: Currency,
        hold_id: Option<String>,
        now: i64,
    ) -> MovementRow {
        MovementRow {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            kind: if top_up { "top_up" } else { "withdrawal" }.to_owned(),
            provider: provider.to_owned(),
            provider_ref: None,
            amount,
            currency: currency.code().to_owned(),
            status: "pending".to_owned(),
            hold_id,
            request_key: None,
            created_at: now,
            refund_of: None,
            amount_refunded: 0,
        }
    }
}

/// The provider's word on a movement settled already (by an earlier attempt of the request,
/// the sweeper, or a notification): the same word again is answered as the first time (whether
/// it was made), moving nothing; a contrary one is refused.
fn settled_again(
    id: &str,
    status: &str,
    recorded: Option<&str>,
    reported: Option<&str>,
) -> Result<bool> {
    match (status, reported) {
        ("succeeded", Some(r)) if recorded == Some(r) => Ok(true),
        ("failed", None) => Ok(false),
        _ => {
            if status == "failed" {
                // Released here, made there: the provider moved money o2o did not.
                tracing::error!(movement = %id, "the provider reports a movement made that o2o released");
            }
            Err(Error::conflict(
                "already_applied",
                "This was applied already.",
            ))
        }
    }
}

fn withdrawal_error(e: Error) -> Error {
    if e.code == "insufficient_funds" {
        payment_declined(
            "insufficient_funds",
            "The wallet holds less than this withdrawal.",
        )
    } else {
        e
    }
}

/// Applies the provider's word on a movement (see [`Op::WalletMove`]). A pending one is
/// settled: made, the money moves (a withdrawal's hold is posted); not made, a withdrawal's hold
/// is released. A settled one is not settled again.
#[allow(clippy::too_many_arguments)]
fn wallet_move(
    state: &mut State,
    movement_id: &str,
    user_id: &str,
    amount: i64,
    currency: Currency,
    provider: &'static str,
    provider_ref: Option<&str>,
    top_up: bool,
) -> Result<Reply> {
    let (mut row, recorded) = match state.movements.get(movement_id) {
        Some(row) => (row.clone(), true),
        // Not started here: a provider's notification is all o2o has of it.
        None if provider_ref.is_some() => (
            MovementRow::pending(
                movement_id,
                user_id,
                top_up,
                provider,
                amount,
                currency,
                None,
                state.now,
            ),
            false,
        ),
        None => {
            return Err(payment_declined(
                "provider_declined",
                "The provider reports the charge did not succeed.",
            ));
        }
    };
    let kind = if top_up { "top_up" } else { "withdrawal" };
    if row.user_id != user_id
        || row.kind != kind
        || row.amount != amount
        || row.currency != currency.code()
        || row.provider != provider
    {
        return Err(Error::conflict(
            "movement_mismatch",
            "The provider's report does not match the movement o2o recorded.",
        ));
    }
    if row.status != "pending" {
        return settled_again(
            &row.id,
            &row.status,
            row.provider_ref.as_deref(),
            provider_ref,
        )
        .and_then(|made| {
            let moved = WalletMoved {
                id: movement_id.to_owned(),
                wallet: wallet_balance(state, user_id, currency),
            };
            if made {
                Reply::created(&moved)
            } else {
                Reply::ok(&moved)
            }
        });
    }
    let bank = accounts::bank(provider, currency);
    let wallet = accounts::wallet(user_id, currency);
    let (debit, credit) = if top_up {
        (&bank, &wallet)
    } else {
        (&wallet, &bank)
    };
    let codes = MoveCodes::of(row.refund_of.is_some());
    let made_code = if top_up { kind } else { codes.made };
    if let Some(top_up_id) = &row.refund_of
        && !state.movements.contains_key(top_up_id)
    {
        // Checked before anything moves (see `refunding`).
        return Err(Error::internal(anyhow::anyhow!(
            "a refund's top-up was not loaded"
        )));
    }
    let moved = match (provider_ref, row.hold_id.clone()) {
        (Some(_), None) => Some((amount, Action::Post, made_code)),
        (Some(_), Some(pending_id)) => {
            Some((amount, Action::PostPending { pending_id }, made_code))
        }
        (None, Some(pending_id)) => Some((0, Action::VoidPending { pending_id }, codes.released)),
        // A top-up the provider did not make: nothing moved.
        (None, None) => None,
    };
    if let Some((amount, action, code)) = moved {
        let t = transfer(debit, credit, amount, currency, action, code, movement_id);
        post_chain(state, &[t]).map_err(|e| if top_up { e } else { withdrawal_error(e) })?;
    }
    row.status = if provider_ref.is_some() {
        "succeeded"
    } else {
        "failed"
    }
    .to_owned();
    row.provider_ref = provider_ref.map(str::to_owned);
    if provider_ref.is_none()
        && let Some(top_up_id) = &row.refund_of
    {
        // A refund the provider did not make: that much of the top-up is left again.
        refunding(state, top_up_id, -amount)?;
    }
    if recorded {
        state.writes.changed_movements.insert(row.id.clone());
    } else {
        state.writes.new_movements.push(row.id.clone());
    }
    state.movements.insert(row.id.clone(), row);
    let moved = WalletMoved {
        id: movement_id.to_owned(),
        wallet: wallet_balance(state, user_id, currency),
    };
    if provider_ref.is_some() {
        Reply::created(&moved)
    } else {
        Reply::ok(&moved)
    }
}

/// The platform fee on `amount`: `fee_bps` basis points, rounded half up to the minor unit.
pub fn fee_of(amount: i64, currency: Currency, fee_bps: i64) -> Result<i64> {
    let bps = u32::try_from(fee_bps).map_err(Error::internal)?;
    o2o_ledger::Money::new(amount, currency)
        .percent_bps(bps, o2o_ledger::Rounding::HalfUp)
        .map(o2o_ledger::Money::amount_minor)
        .map_err(|_| Error::invalid("amount_too_large", "The amount is too large.").param("amount"))
}

pub(crate) fn pay(state: &mut State, p: &NewPayment) -> Result<Reply> {
    // A coupon: checked against the bill (the order, or the amount entered) first.
    let discount = match &p.coupon_id {
        None => 0,
        Some(coupon) => {
            if p.hold_until.is_some() {
                return Err(Error::invalid(
                    "coupon_not_allowed",
                    "A coupon cannot be used on a held payment (capture: manual).",
                )
                .param("coupon"));
            }
            let payer = payer_and_source(state, p).0.map(str::to_owned);
            if let (Some(holder), Some(payer)) = (&p.coupon_holder, &payer)
                && holder != payer
            {
                return Err(Error::invalid(
                    "coupon_not_payers",
                    "This coupon belongs to someone else than the pay code's owner.",
                )
                .param("coupon"));
            }
            let user = p.coupon_holder.clone().or(payer);
            match &p.order_id {
                Some(order_id) => crate::orders::engine::coupon_discount(
                    state,
                    order_id,
                    p,
                    user.as_deref(),
                    coupon,
                )?,
                None => {
                    let bill = crate::marketing::engine::Bill {
                        user_id: user.as_deref(),
                        merchant_id: &p.merchant_id,
                        store_id: p.store_id.as_deref(),
                        channel: "store_pay",
                        currency: p.currency.code(),
                        base: p.amount,
                        coupons_on_order: 0,
                        free_item_price: None,
                    };
                    crate::marketing::engine::quote(state, coupon, &bill)?
                }
            }
        }
    };
    let amount = crate::orders::engine::before_pay(state, p, discount)?;
    // A member card's tier: its percent off what is left to pay after the coupon.
    let member = crate::members::engine::tier_discount(state, p, amount);
    let charged = amount - member.as_ref().map_or(0, |m| m.amount);
    if charged != p.amount || discount > 0 || member.is_some() {
        let mut p = p.clone();
        p.amount = charged;
        return pay_checked(state, &p, discount, member);
    }
    pay_checked(state, p, 0, None)
}

/// `p.amount` is what the payer is charged: the bill less the coupon's `discount` (paid by the
/// promotion account) and less the `member` tier's price cut (which nobody pays: the merchant
/// receives what was charged).
fn pay_checked(
    state: &mut State,
    p: &NewPayment,
    discount: i64,
    member: Option<crate::members::engine::TierDiscount>,
) -> Result<Reply> {
    let c = p.currency;
    let (user_id, source) = match &p.pay_code_hash {
        Some(hash) => {
            let now = state.now;
            let code = state.pay_codes.get(hash).ok_or_else(|| {
                payment_declined("pay_code_invalid", "This is not a valid pay code.")
            })?;
            if code.used_at.is_some() {
                return Err(payment_declined(
                    "code_used",
                    "This pay code was already used; ask for a fresh one.",
                ));
            }
            if code.expires_at <= now {
                return Err(payment_declined(
                    "code_expired",
                    "This pay code has expired; ask for a fresh one.",
                ));
            }
            if code.valid_from > now {
                return Err(payment_declined(
                    "code_not_yet_valid",
                    "This pay code is not valid yet; show the current one.",
                ));
            }
            (Some(code.user_id.clone()), code.source.clone())
        }
        None => (
            p.user_id.clone(),
            p.source.clone().unwrap_or_else(|| "wallet".into()),
        ),
    };
    let merchant = accounts::merchant_pending(&p.merchant_id, c);
    let from = match source.as_str() {
        "cash" => accounts::drawer(p.store_id.as_deref().unwrap_or_default(), c),
        "wallet" => accounts::wallet(user_id.as_deref().unwrap_or_default(), c),
        card => accounts::card(card, c),
    };
    let fee = if source == "cash" {
        0
    } else {
        fee_of(p.amount, c, p.fee_bps)?
    };
    let (status, hold_id, chain) = if source == "cash" {
        let cash = accounts::merchant_cash(&p.merchant_id, c);
        let mut chain = vec![transfer(
            &from,
            &cash,
            p.amount,
            c,
            Action::Post,
            "cash_payment",
            &p.id,
        )];
        if discount > 0 {
            // A scanned coupon on cash: its part is paid by the promotion account into what the
            // merchant collects (the cash drawer took only what the consumer handed over).
            chain.push(transfer(
                &accounts::merchant_promotion(&p.merchant_id, c),
                &accounts::merchant_pending(&p.merchant_id, c),
                discount,
                c,
                Action::Post,
                "coupon",
                &p.id,
            ));
        }
        ("succeeded", None, chain)
    } else if let Some(expires_at) = p.hold_until {
        let t = transfer(
            &from,
            &merchant,
            p.amount,
            c,
            Action::Pending { expires_at },
            "payment_hold",
            &p.id,
        );
        ("requires_capture", Some(t.id.clone()), vec![t])
    } else {
        let mut chain = vec![transfer(
            &from,
            &merchant,
            p.amount,
            c,
            Action::Post,
            "payment",
            &p.id,
        )];
        if discount > 0 {
            // The coupon's part, paid by the merchant's promotion account.
            chain.push(transfer(
                &accounts::merchant_promotion(&p.merchant_id, c),
                &merchant,
                discount,
                c,
                Action::Post,
                "coupon",
                &p.id,
            ));
        }
        if fee > 0 {
            let fees = accounts::platform_fees(c);
            chain.push(transfer(
                &merchant,
                &fees,
                fee,
                c,
                Action::Post,
                "fee",
                &p.id,
            ));
        }
        ("succeeded", None, chain)
    };
    let (chain, card_spend) =
        crate::members::engine::card_payment(state, p, user_id.as_deref(), &source, chain)?;
    post_chain(state, &chain)?;
    if let Some(spend) = card_spend {
        crate::members::engine::after_pay(state, p, &source, spend);
    }
    if let Some(hash) = &p.pay_code_hash {
        if let Some(code) = state.pay_codes.get_mut(hash) {
            code.used_at = Some(state.now);
        }
        state.writes.pay_codes_used.push(json!({
            "code_hash": hash, "used_at": state.now, "used_by": p.staff_id.clone().unwrap_or_else(|| p.id.clone()),
        }));
    }
    let captured = if status == "succeeded" { p.amount } else { 0 };
    let row = PaymentRow {
        id: p.id.clone(),
        merchant_id: p.merchant_id.clone(),
        store_id: p.store_id.clone(),
        user_id,
        method: p.method.to_owned(),
        source,
        qr_id: p.qr_id.clone(),
        order_id: p.order_id.clone(),
        status: status.to_owned(),
        amount: p.amount,
        currency: c.code().to_owned(),
        amount_captured: captured,
        amount_refunded: 0,
        fee: if status == "succeeded" { fee } else { 0 },
        fee_refunded: 0,
        fee_bps: p.fee_bps,
        hold_id,
        hold_expires_at: p.hold_until,
        business_day: p.business_day.clone(),
        staff_id: p.staff_id.clone(),
        description: p.description.clone(),
        created_at: state.now,
        updated_at: state.now,
        coupon_id: p.coupon_id.clone().filter(|_| discount > 0),
        discount,
        member_discount: member.as_ref().map_or(0, |m| m.amount),
        member_tier: member.as_ref().map(|m| m.tier.clone()),
    };
    let public = row.public();
    let kind = if status == "succeeded" {
        "payment.succeeded"
    } else {
        "payment.requires_capture"
    };
    // The answer is the payment as its event carries it: serialized once.
    let data = crate::events::raw(&public);
    let answer = data.get().to_owned();
    event_json(state, &p.merchant_id, p.store_id.as_deref(), kind, data);
    state.writes.new_payments.push(row.id.clone());
    state.payments.insert(row.id.clone(), row);
    if let Some(coupon) = p.coupon_id.as_deref().filter(|_| discount > 0) {
        crate::marketing::engine::mark_used(state, coupon, &p.id, p.order_id.as_deref(), discount);
        if let Some(order_id) = &p.order_id {
            let label = crate::marketing::engine::label(state, coupon);
            crate::orders::engine::add_discount(
                state,
                order_id,
                crate::orders::model::Discount {
                    code: coupon.to_owned(),
                    label,
                    amount: discount,
                },
            );
        }
    }
    if let (Some(order_id), Some(m)) = (&p.order_id, &member) {
        crate::orders::engine::add_discount(
            state,
            order_id,
            crate::orders::model::Discount {
                code: format!("tier:{}", m.tier),
                label: format!("{} −{}%", m.tier, m.percent_off),
                amount: m.amount,
            },
        );
    }
    if let Some(order_id) = &p.order_id {
        crate::orders::engine::after_pay(state, order_id, &p.id, p.amount);
    }
    Ok(Reply {
        status: 201,
        body: answer,
    })
}

fn payment_not_found() -> Error {
    Error::not_found("payment_not_found", "No such payment.").param("payment")
}

fn capture(
    state: &mut State,
    payment_id: &str,
    merchant_id: &str,
    amount: Option<i64>,
) -> Result<Reply> {
    let p = state
        .payments
        .get(payment_id)
        .filter(|p| p.merchant_id == merchant_id)
        .ok_or_else(payment_not_found)?
        .clone();
    if p.status != "requires_capture" {
        return Err(Error::conflict(
            "payment_not_capturable",
            format!("This payment is {}, not awaiting capture.", p.status),
        ));
    }
    let amount = amount.unwrap_or(p.amount);
    if amount <= 0 {
        return Err(
            Error::invalid("amount_invalid", "The amount must be positive.").param("amount"),
        );
    }
    if amount > p.amount {
        return Err(Error::invalid(
            "amount_exceeds_hold",
            "You can capture at most the amount held.",
        )
        .param("amount"));
    }
    let c = Currency::parse(&p.currency).map_err(Error::internal)?;
    let from = source_account(&p)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("payment without source")))?;
    let merchant = accounts::merchant_pending(&p.merchant_id, c);
    let hold_id = p.hold_id.clone().unwrap_or_default();
    let fee = fee_of(amount, c, p.fee_bps)?;
    let mut chain = vec![transfer(
        &from,
        &merchant,
        amount,
        c,
        Action::PostPending {
            pending_id: hold_id,
        },
        "payment_capture",
        &p.id,
    )];
    if fee > 0 {
        chain.push(transfer(
            &merchant,
            &accounts::platform_fees(c),
            fee,
            c,
            Action::Post,
            "fee",
            &p.id,
        ));
    }
    post_chain(state, &chain)?;
    let mut row = p;
    row.status = "succeeded".into();
    row.amount_captured = amount;
    row.fee = fee;
    row.updated_at = state.now;
    let public = row.public();
    event(
        state,
        &row.merchant_id.clone(),
        row.store_id.clone().as_deref(),
        "payment.succeeded",
        &public,
    );
    state.writes.changed_payments.insert(row.id.clone());
    state.payments.insert(row.id.clone(), row);
    Reply::ok(&public)
}

fn release(
    state: &mut State,
    payment_id: &str,
    merchant_id: Option<&str>,
    why: &str,
) -> Result<Reply> {
    let p = state
        .payments
        .get(payment_id)
        .filter(|p| merchant_id.is_none_or(|m| p.merchant_id == m))
        .ok_or_else(payment_not_found)?
        .clone();
    if p.status != "requires_capture" {
        return Err(Error::conflict(
            "payment_not_cancelable",
            format!(
                "This payment is {}; only a payment awaiting capture can be canceled (refund it instead).",
                p.status
            ),
        ));
    }
    if why == "expired" && p.hold_expires_at.is_some_and(|t| t > state.now) {
        return Err(Error::conflict(
            "hold_not_expired",
            "The hold has not lapsed yet.",
        ));
    }
    let c = Currency::parse(&p.currency).map_err(Error::internal)?;
    let from = source_account(&p)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("payment without source")))?;
    let merchant = accounts::merchant_pending(&p.merchant_id, c);
    let t = transfer(
        &from,
        &merchant,
        0,
        c,
        Action::VoidPending {
            pending_id: p.hold_id.clone().unwrap_or_default(),
        },
        if why == "expired" {
            "hold_expired"
        } else {
            "hold_canceled"
        },
        &p.id,
    );
    post_chain(state, &[t])?;
    let mut row = p;
    row.status = "canceled".into();
    row.updated_at = state.now;
    let public = row.public();
    #[derive(serde::Serialize)]
    struct Reason<'a> {
        cancellation_reason: &'a str,
    }
    event(
        state,
        &row.merchant_id.clone(),
        row.store_id.clone().as_deref(),
        "payment.canceled",
        &With {
            object: &public,
            extra: Reason {
                cancellation_reason: why,
            },
        },
    );
    state.writes.changed_payments.insert(row.id.clone());
    state.payments.insert(row.id.clone(), row);
    Reply::ok(&public)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn refund(
    state: &mut State,
    refund_id: &str,
    payment_id: &str,
    merchant_id: &str,
    amount: Option<i64>,
    reason: Option<String>,
    business_day: &str,
    staff_id: Option<String>,
) -> Result<Reply> {
    let p = state
        .payments
        .get(payment_id)
        .filter(|p| p.merchant_id == merchant_id)
        .ok_or_else(payment_not_found)?
        .clone();
    if p.status != "succeeded" {
        return Err(Error::conflict(
            "payment_not_refundable",
            format!(
                "This payment is {}; only a succeeded payment can be refunded.",
                p.status
            ),
        ));
    }
    let left = p.amount_captured - p.amount_refunded;
    let amount = amount.unwrap_or(left);
    if amount <= 0 && left == 0 {
        return Err(payment_declined(
            "refund_exceeds_payment",
            "This payment has been refunded in full.",
        ));
    }
    if amount <= 0 {
        return Err(
            Error::invalid("amount_invalid", "The amount must be positive.").param("amount"),
        );
    }
    if amount > left {
        return Err(payment_declined(
            "refund_exceeds_payment",
            "That is more than is left to refund on this payment.",
        ));
    }
    let c = Currency::parse(&p.currency).map_err(Error::internal)?;
    let to = source_account(&p)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("payment without source")))?;
    let refunded_after = p.amount_refunded + amount;
    // The fee goes back in proportion to what is refunded, rounded half up on the running
    // total, so a payment refunded in full returns exactly its fee.
    let fee_back_total = if p.amount_captured == 0 {
        0
    } else {
        let exact = i128::from(p.fee) * i128::from(refunded_after);
        i64::try_from(
            (exact * 2 + i128::from(p.amount_captured)) / (2 * i128::from(p.amount_captured)),
        )
        .unwrap_or(p.fee)
    };
    let fee_back = (fee_back_total - p.fee_refunded).max(0);
    let chain = if p.source == "cash" {
        vec![transfer(
            &accounts::merchant_cash(&p.merchant_id, c),
            &to,
            amount,
            c,
            Action::Post,
            "cash_refund",
            refund_id,
        )]
    } else {
        let merchant = accounts::merchant_pending(&p.merchant_id, c);
        let mut chain = Vec::new();
        if fee_back > 0 {
            chain.push(transfer(
                &accounts::platform_fees(c),
                &merchant,
                fee_back,
                c,
                Action::Post,
                "fee_refund",
                refund_id,
            ));
        }
        chain.push(transfer(
            &merchant,
            &to,
            amount,
            c,
            Action::Post,
            "refund",
            refund_id,
        ));
        chain
    };
    let (chain, card_back) = crate::members::engine::card_refund(state, &p, amount, chain)?;
    // Refunded in full: the coupon comes back, and its part returns to the promotion account.
    let coupon_back = p
        .coupon_id
        .clone()
        .filter(|_| refunded_after == p.amount_captured && p.discount > 0);
    let mut chain = chain;
    if coupon_back.is_some() {
        chain.push(transfer(
            &accounts::merchant_pending(&p.merchant_id, c),
            &accounts::merchant_promotion(&p.merchant_id, c),
            p.discount,
            c,
            Action::Post,
            "coupon_return",
            refund_id,
        ));
    }
    post_chain(state, &chain)?;
    if let Some(back) = card_back {
        crate::members::engine::after_refund(state, &p, refund_id, back);
    }
    if let Some(coupon) = &coupon_back {
        crate::marketing::engine::restore(state, coupon);
    }
    let refund = Refund {
        id: refund_id.to_owned(),
        payment: p.id.clone(),
        amount,
        currency: p.currency.clone(),
        fee_returned: fee_back,
        status: "succeeded".into(),
        reason: reason.clone(),
        created_at: rfc3339(state.now),
    };
    state.writes.refunds.push(json!({
        "id": refund_id, "payment_id": p.id, "merchant_id": p.merchant_id, "amount": amount,
        "fee_returned": fee_back, "currency": p.currency, "reason": reason, "status": "succeeded",
        "business_day": business_day, "staff_id": staff_id, "created_at": state.now,
    }));
    let mut row = p;
    row.amount_refunded = refunded_after;
    row.fee_refunded += fee_back;
    row.updated_at = state.now;
    #[derive(serde::Serialize)]
    struct Refunded<'a, R: serde::Serialize> {
        refund: &'a R,
    }
    event(
        state,
        &row.merchant_id.clone(),
        row.store_id.clone().as_deref(),
        "payment.refunded",
        &With {
            object: &row.public(),
            extra: Refunded { refund: &refund },
        },
    );
    state.writes.changed_payments.insert(row.id.clone());
    if let Some(order_id) = &row.order_id {
        crate::orders::engine::after_refund(state, order_id, amount);
    }
    state.payments.insert(row.id.clone(), row);
    Reply::created(&refund)
}

/// A merchant's balances after a settlement or payout.
#[derive(serde::Serialize)]
struct Moved {
    id: String,
    merchant_id: String,
    amount: i64,
    currency: String,
    pending: i64,
    available: i64,
    /// A settlement's coupon costs beyond the funded promotion budget, taken from what the
    /// merchant collected (`promotion_settlement`); absent on payouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion_cost: Option<i64>,
}

fn balance_of(state: &State, spec: &AccountSpec) -> i64 {
    state.book.account(&spec.id).map(|a| a.balance).unwrap_or(0)
}

/// An account's balance less what holds on it (payouts in flight) keep.
fn available_of(state: &State, spec: &AccountSpec) -> i64 {
    state
        .book
        .account(&spec.id)
        .map(Account::available)
        .unwrap_or(0)
}

/// What moved into `account` since `cutoff` (see [`net_since`]): before this batch as loaded,
/// plus this batch's own posted transfers (all after the cutoff) other than settlements.
fn today_net(state: &State, account: &str, cutoff: Option<i64>) -> i64 {
    let Some(cutoff) = cutoff else {
        return 0;
    };
    let before = state
        .since_cutoff
        .get(&(account.to_owned(), cutoff))
        .copied()
        .unwrap_or(0);
    let in_batch: i64 = state
        .writes
        .transfers
        .iter()
        .filter(|t| matches!(t.action, "post" | "post_pending"))
        .filter(|t| !SETTLEMENT_CODES.contains(&t.code))
        .map(|t| {
            i64::from(t.credit_account == account) * t.amount
                - i64::from(t.debit_account == account) * t.amount
        })
        .sum();
    before + in_batch
}

fn settle(
    state: &mut State,
    id: &str,
    merchant_id: &str,
    currency: Currency,
    cutoff: Option<i64>,
) -> Result<Reply> {
    let pending = accounts::merchant_pending(merchant_id, currency);
    let available = accounts::merchant_available(merchant_id, currency);
    // What coupons cost since the last settlement comes out of what the merchant collected:
    // the promotion account is a cost account, brought back to zero here (with a cutoff, less
    // what they cost since it, which waits for its own day).
    let promotion = accounts::merchant_promotion(merchant_id, currency);
    let spent_today = (-today_net(state, &promotion.id, cutoff)).max(0);
    let spent = -balance_of(state, &promotion) - spent_today;
    if spent > 0 {
        let t = transfer(
            &pending,
            &promotion,
            spent,
            currency,
            Action::Post,
            "promotion_settlement",
            id,
        );
        post_chain(state, &[t])?;
    }
    // With a cutoff, what came in since (when more came in than went out) stays pending.
    let kept = today_net(state, &pending.id, cutoff).max(0);
    let amount = balance_of(state, &pending) - kept;
    if amount > 0 {
        let t = transfer(
            &pending,
            &available,
            amount,
            currency,
            Action::Post,
            "settlement",
            id,
        );
        post_chain(state, &[t])?;
    }
    Reply::created(&Moved {
        id: id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        amount: amount.max(0),
        currency: currency.code().to_owned(),
        pending: balance_of(state, &pending),
        available: available_of(state, &available),
        promotion_cost: Some(spent.max(0)),
    })
}

fn payout(
    state: &mut State,
    id: &str,
    merchant_id: &str,
    amount: i64,
    currency: Currency,
    provider: &'static str,
    request_key: Option<String>,
) -> Result<Reply> {
    let available = accounts::merchant_available(merchant_id, currency);
    // What other payouts in flight hold is not available.
    if available_of(state, &available) < amount {
        return Err(payment_declined(
            "insufficient_funds",
            "That is more than the merchant's available balance.",
        ));
    }
    let t = transfer(
        &available,
        &accounts::bank(provider, currency),
        amount,
        currency,
        Action::Pending {
            expires_at: state.now + MOVE_HOLD_US,
        },
        "payout_hold",
        id,
    );
    let row = PayoutRow {
        id: id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        provider: provider.to_owned(),
        provider_ref: None,
        amount,
        currency: currency.code().to_owned(),
        status: "pending".to_owned(),
        hold_id: t.id.clone(),
        request_key,
        created_at: state.now,
    };
    post_chain(state, &[t])?;
    state.writes.new_payouts.push(row.id.clone());
    state.payouts.insert(row.id.clone(), row);
    payout_reply(state, id, merchant_id, amount, currency, true)
}

fn payout_reply(
    state: &State,
    id: &str,
    merchant_id: &str,
    amount: i64,
    currency: Currency,
    made: bool,
) -> Result<Reply> {
    let moved = Moved {
        id: id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        amount,
        currency: currency.code().to_owned(),
        pending: balance_of(state, &accounts::merchant_pending(merchant_id, currency)),
        available: available_of(state, &accounts::merchant_available(merchant_id, currency)),
        promotion_cost: None,
    };
    if made {
        Reply::created(&moved)
    } else {
        Reply::ok(&moved)
    }
}

/// Posts a payout's hold when the provider made it, or releases it (see [`Op::PayoutSettled`]).
fn payout_settled(
    state: &mut State,
    id: &str,
    merchant_id: &str,
    amount: i64,
    currency: Currency,
    provider: &'static str,
    provider_ref: Option<&str>,
) -> Result<Reply> {
    let mut row = state
        .payouts
        .get(id)
        .filter(|p| {
            p.merchant_id == merchant_id && p.currency == currency.code() && p.provider == provider
        })
        .cloned()
        .ok_or_else(|| Error::not_found("payout_not_found", "No such payout."))?;
    if row.amount != amount {
        return Err(Error::conflict(
            "movement_mismatch",
            "The provider's report does not match the payout o2o recorded.",
        ));
    }
    if row.status != "pending" {
        let made = settled_again(
            &row.id,
            &row.status,
            row.provider_ref.as_deref(),
            provider_ref,
        )?;
        return payout_reply(state, id, merchant_id, row.amount, currency, made);
    }
    let (amount, action, code) = match provider_ref {
        Some(_) => (
            row.amount,
            Action::PostPending {
                pending_id: row.hold_id.clone(),
            },
            "payout",
        ),
        None => (
            0,
            Action::VoidPending {
                pending_id: row.hold_id.clone(),
            },
            "payout_released",
        ),
    };
    let t = transfer(
        &accounts::merchant_available(merchant_id, currency),
        &accounts::bank(provider, currency),
        amount,
        currency,
        action,
        code,
        id,
    );
    post_chain(state, &[t])?;
    row.status = if provider_ref.is_some() {
        "succeeded"
    } else {
        "failed"
    }
    .to_owned();
    row.provider_ref = provider_ref.map(str::to_owned);
    let made = provider_ref.is_some();
    let amount = row.amount;
    state.writes.changed_payouts.insert(row.id.clone());
    state.payouts.insert(row.id.clone(), row);
    payout_reply(state, id, merchant_id, amount, currency, made)
}

/// The batch's set-based writes, in this order, each a pair of SQL texts (SQLite, PostgreSQL).
///
/// On SQLite each runs once per row, the row's fields bound to its `:name` parameters
/// ([`crate::db::Direct`]): no round trip to sqlx's connection thread per row, and no JSON.
/// On PostgreSQL each is written to read its rows with `json_to_recordset`, and reads them from
/// one array per column instead ([`crate::db::columns`]); all go out as one statement, each
/// write a data-modifying `WITH` part (one round trip; the parts touch different rows, and
/// foreign keys are checked at the statement's end, when every part has run).
const DEFERRED: [(&str, &str); 14] = [
    crate::orders::store::UPSERT,
    crate::catalog::store::ADD_STOCK,
    SQL_NEW_ACCOUNTS,
    SQL_BALANCES,
    SQL_TRANSFERS,
    SQL_NEW_PAYMENTS,
    SQL_CHANGED_PAYMENTS,
    SQL_REFUNDS,
    SQL_MOVEMENTS,
    SQL_CHANGED_MOVEMENTS,
    SQL_NEW_PAYOUTS,
    SQL_CHANGED_PAYOUTS,
    SQL_EVENTS,
    SQL_IDEM,
];

/// PostgreSQL's one statement for the deferred writes: each of [`DEFERRED`] as a part of a
/// `WITH`, reading its rows from arrays (see [`crate::db::columns`]) numbered after the parts
/// before it; and the columns each part reads, in the order of its parameters.
struct PostgresWrites {
    sql: String,
    parts: Vec<Vec<(String, Kind)>>,
}

fn postgres_writes() -> std::result::Result<PostgresWrites, String> {
    let mut first = 1;
    let mut ctes = Vec::new();
    let mut parts = Vec::new();
    // Every changed balance must have found its row: the statement fails otherwise (see
    // `o2o_accounts_written` in migration 0021).
    let mut check = None;
    for (i, pair) in DEFERRED.iter().enumerate() {
        let u = crate::db::columns::rewrite(pair.1, first)?;
        if pair.0 == SQL_BALANCES.0 {
            if u.columns.first().map(|c| c.0.as_str()) != Some("id") {
                return Err(format!(
                    "the balances' first column is not their id: {}",
                    pair.1
                ));
            }
            check = Some(format!(
                "o2o_accounts_written((SELECT count(*) FROM w{i}), cardinality(${first}::text[]))"
            ));
        }
        first += u.columns.len();
        ctes.push(format!("w{i} AS ({})", u.sql));
        parts.push(u.columns);
    }
    let check = check.ok_or("the balances are not among the deferred writes")?;
    Ok(PostgresWrites {
        sql: format!("WITH {} SELECT {check}", ctes.join(",\n")),
        parts,
    })
}

static POSTGRES_WRITES: std::sync::LazyLock<std::result::Result<PostgresWrites, String>> =
    std::sync::LazyLock::new(postgres_writes);

/// Where a batch's writes go: straight into SQLite's prepared statements, or collected as
/// arrays for PostgreSQL's one statement (see [`DEFERRED`]).
pub(crate) struct Sink<'c> {
    /// SQLite's handle; `None` on PostgreSQL, whose rows are collected in `columns`.
    direct: Option<crate::db::Direct<'c>>,
    columns: Vec<Option<Columns<'static>>>,
    added: [bool; DEFERRED.len()],
}

impl<'c> Sink<'c> {
    fn new(direct: Option<crate::db::Direct<'c>>) -> Sink<'c> {
        Sink {
            direct,
            columns: (0..DEFERRED.len()).map(|_| None).collect(),
            added: [false; DEFERRED.len()],
        }
    }

    /// Writes (or collects) `rows` with `sql`, one of [`DEFERRED`]; each is added once.
    /// Answers the rows changed on SQLite (and `rows.len()` on PostgreSQL, where it is only
    /// known when the statement runs).
    pub(crate) fn add<T: serde::Serialize>(
        &mut self,
        rows: &[T],
        sql: (&'static str, &'static str),
    ) -> std::result::Result<u64, BatchError> {
        let slot = DEFERRED
            .iter()
            .position(|d| d.0 == sql.0)
            .expect("every deferred statement is listed");
        debug_assert!(!self.added[slot], "each write is added once");
        self.added[slot] = true;
        if rows.is_empty() {
            return Ok(0);
        }
        match &mut self.direct {
            Some(d) => Ok(d.each(sql.0, rows)?),
            None => {
                let writes = postgres_writes_made()?;
                let mut cols = Columns::new(&writes.parts[slot]);
                for row in rows {
                    cols.push(row).map_err(|e| {
                        BatchError::Db(DbError::Other(sqlx::Error::Encode(Box::new(e))))
                    })?;
                }
                self.columns[slot] = Some(cols);
                Ok(rows.len() as u64)
            }
        }
    }
}

fn postgres_writes_made() -> std::result::Result<&'static PostgresWrites, BatchError> {
    POSTGRES_WRITES
        .as_ref()
        .map_err(|e| BatchError::Db(DbError::Other(sqlx::Error::Protocol(e.clone()))))
}

/// Runs PostgreSQL's collected writes as one statement (each part with no rows reads empty
/// arrays).
async fn finish_columns(
    tx: &mut Tx,
    columns: Vec<Option<Columns<'static>>>,
) -> std::result::Result<(), BatchError> {
    if columns.iter().all(Option::is_none) {
        return Ok(());
    }
    let writes = postgres_writes_made()?;
    let mut q = crate::db::query(&writes.sql);
    for (part, cols) in writes.parts.iter().zip(columns) {
        let cols = cols.unwrap_or_else(|| Columns::new(part));
        for v in cols.into_values() {
            q = q.bind(v);
        }
    }
    // The batch's last statement: on PostgreSQL, one that read nothing sends it alone (see
    // `Db::begin_batch`), and nothing after it may fail.
    tx.execute_last(q).await?;
    Ok(())
}

async fn flush(tx: &mut Tx, state: &mut State) -> std::result::Result<(), BatchError> {
    // Pay codes apart, since their count is checked (the batch statement of PostgreSQL
    // answers none).
    let used = tx
        .write_rows(
            &state.writes.pay_codes_used,
            SQL_PAY_CODES.0,
            SQL_PAY_CODES.1,
        )
        .await?;
    if used != state.writes.pay_codes_used.len() as u64 {
        // Someone used a code between our read and our write (impossible on SQLite, where the
        // batch holds the write lock from its first read): never double-spend.
        return Err(BatchError::Db(DbError::Conflict {
            constraint: "pay_codes.used_at".into(),
        }));
    }
    crate::marketing::engine::flush(tx, state).await?;
    crate::members::engine::flush(tx, state).await?;
    // On PostgreSQL the rows are collected, then written by one statement.
    let columns = {
        let mut sink = Sink::new(tx.direct().await?);
        crate::orders::engine::write_rows(&mut sink, state)?;
        write_rows(&mut sink, state)?;
        sink.columns
    };
    crate::orders::engine::bump_versions(tx, state).await?;
    finish_columns(tx, columns).await
}

/// An account's row as a batch writes it (its balances, and what a new row needs beside them).
#[derive(serde::Serialize)]
struct BalanceRow<'a> {
    id: &'a str,
    currency: &'static str,
    no_overdraft: bool,
    balance: i64,
    pending_out: i64,
    pending_in: i64,
    created_at: i64,
}

impl BalanceRow<'_> {
    fn of(a: &Account, now: i64) -> BalanceRow<'_> {
        BalanceRow {
            id: &a.id,
            currency: a.currency.code(),
            no_overdraft: a.no_overdraft,
            balance: a.balance,
            pending_out: a.pending_out,
            pending_in: a.pending_in,
            created_at: now,
        }
    }
}

/// What a batch changed of an existing account: what it added to each balance, those it
/// started from, and whether they must still be so (`checked`, see `SQL_BALANCES`).
#[derive(serde::Serialize)]
struct ChangedBalance<'a> {
    id: &'a str,
    add_balance: i64,
    add_pending_out: i64,
    add_pending_in: i64,
    was_balance: i64,
    was_pending_out: i64,
    was_pending_in: i64,
    checked: bool,
}

impl ChangedBalance<'_> {
    fn of<'a>(a: &'a Account, was: &Account, checked: bool) -> ChangedBalance<'a> {
        ChangedBalance {
            id: &a.id,
            add_balance: a.balance - was.balance,
            add_pending_out: a.pending_out - was.pending_out,
            add_pending_in: a.pending_in - was.pending_in,
            was_balance: was.balance,
            was_pending_out: was.pending_out,
            was_pending_in: was.pending_in,
            checked,
        }
    }
}

/// A new account's row: its kind and owner, then its balances.
#[derive(serde::Serialize)]
struct NewAccountRow<'a> {
    kind: &'static str,
    owner_id: Option<&'a str>,
    #[serde(flatten)]
    row: BalanceRow<'a>,
}

/// Writes the batch's rows (see [`DEFERRED`]).
fn write_rows(sink: &mut Sink<'_>, state: &State) -> std::result::Result<(), BatchError> {
    let w = &state.writes;
    // New accounts: a plain insert, so that two nodes creating one account at once conflict
    // (and retry) instead of one overwriting the other's balance.
    let new_ids: HashSet<&str> = w.new_accounts.iter().map(|a| a.id.as_str()).collect();
    let new_rows: Vec<NewAccountRow> = w
        .new_accounts
        .iter()
        .filter_map(|spec| {
            let a = state.book.account(&spec.id)?;
            Some(NewAccountRow {
                kind: spec.kind.as_str(),
                owner_id: spec.owner.as_deref(),
                row: BalanceRow::of(a, state.now),
            })
        })
        .collect();
    sink.add(&new_rows, SQL_NEW_ACCOUNTS)?;
    // Changed balances of existing accounts, as what the batch added to them (see
    // `SQL_BALANCES`). Those a decision rested on are written only if the row still holds the
    // balances the batch started from: always so for rows the batch read (it locked them), and
    // the check that makes it safe to start from the accounts kept since the last commit (see
    // `load`). Sorted by id, as the batches' reads lock accounts.
    let mut changed_rows: Vec<ChangedBalance> = state
        .book
        .changed_accounts()
        .filter(|a| !new_ids.contains(a.id.as_str()))
        .map(|a| {
            let was = state.book.before_changes(&a.id).ok_or_else(|| {
                BatchError::Db(DbError::Other(sqlx::Error::Protocol(
                    "a changed account was not loaded".into(),
                )))
            })?;
            let checked = a.no_overdraft || state.consults_open_balances;
            Ok(ChangedBalance::of(a, was, checked))
        })
        .collect::<std::result::Result<_, BatchError>>()?;
    changed_rows.sort_unstable_by(|a, b| a.id.cmp(b.id));
    if sink.add(&changed_rows, SQL_BALANCES)? != changed_rows.len() as u64 {
        // On SQLite the batch's accounts are this node's alone: a row not as it was is a bug,
        // never a write to let through. (PostgreSQL's statement fails by itself, see
        // `SQL_BALANCES` and `postgres_writes`.)
        return Err(BatchError::Db(DbError::Other(sqlx::Error::Protocol(
            "a changed account is not stored as it was loaded".into(),
        ))));
    }
    sink.add(&w.transfers, SQL_TRANSFERS)?;
    let (new, changed) = new_and_changed(&state.payments, &w.new_payments, &w.changed_payments);
    sink.add(&new, SQL_NEW_PAYMENTS)?;
    sink.add(&changed, SQL_CHANGED_PAYMENTS)?;
    sink.add(&w.refunds, SQL_REFUNDS)?;
    let (new, changed) = new_and_changed(&state.movements, &w.new_movements, &w.changed_movements);
    sink.add(&new, SQL_MOVEMENTS)?;
    sink.add(&changed, SQL_CHANGED_MOVEMENTS)?;
    let (new, changed) = new_and_changed(&state.payouts, &w.new_payouts, &w.changed_payouts);
    sink.add(&new, SQL_NEW_PAYOUTS)?;
    sink.add(&changed, SQL_CHANGED_PAYOUTS)?;
    let events: Vec<EventRow> = state.published.iter().map(EventRow::of).collect();
    sink.add(&events, SQL_EVENTS)?;
    sink.add(&w.idem, SQL_IDEM)?;
    Ok(())
}

/// The rows a batch inserts (`new`, as they ended up) and those it only updates (`changed`).
fn new_and_changed<'a, T>(
    rows: &'a HashMap<String, T>,
    new: &[String],
    changed: &HashSet<String>,
) -> (Vec<&'a T>, Vec<&'a T>) {
    let inserted: HashSet<&String> = new.iter().collect();
    (
        new.iter().filter_map(|id| rows.get(id)).collect(),
        changed
            .iter()
            .filter(|id| !inserted.contains(id))
            .filter_map(|id| rows.get(id))
            .collect(),
    )
}

const SQL_NEW_ACCOUNTS: (&str, &str) = (
    "INSERT INTO ledger_accounts (id, kind, owner_id, currency, no_overdraft, balance, pending_out, pending_in, created_at) VALUES (:id, :kind, :owner_id, :currency, :no_overdraft, :balance, :pending_out, :pending_in, :created_at)",
    "INSERT INTO ledger_accounts (id, kind, owner_id, currency, no_overdraft, balance, pending_out, pending_in, created_at) \
         SELECT id, kind, owner_id, currency, no_overdraft, balance, pending_out, pending_in, created_at \
         FROM json_to_recordset($1::json) AS x(id text, kind text, owner_id text, currency text, no_overdraft boolean, \
         balance bigint, pending_out bigint, pending_in bigint, created_at bigint)",
);

/// What a batch adds to an account's balances. An account a decision may rest on (`checked`:
/// one that may not go negative, or any account of a batch that consults balances, see
/// [`Op::consults_open_balances`]) must still hold the balances the batch started from; the
/// others need not, so that nodes paying into one merchant do not fail each other's batches
/// made from kept balances. On PostgreSQL a checked row that moved fails the whole statement, with
/// `serialization_failure` (see `o2o_account_moved` in migration 0021), so that nothing of the
/// batch is written; the sequencer then makes the batch again from locked reads.
const SQL_BALANCES: (&str, &str) = (
    "UPDATE ledger_accounts SET balance = balance + :add_balance, pending_out = pending_out + :add_pending_out, \
         pending_in = pending_in + :add_pending_in \
         WHERE id = :id AND (NOT :checked OR (balance = :was_balance AND pending_out = :was_pending_out AND pending_in = :was_pending_in))",
    "UPDATE ledger_accounts AS a SET \
         balance = CASE WHEN NOT x.checked OR (a.balance = x.was_balance AND a.pending_out = x.was_pending_out \
           AND a.pending_in = x.was_pending_in) THEN a.balance + x.add_balance ELSE o2o_account_moved(a.id) END, \
         pending_out = a.pending_out + x.add_pending_out, pending_in = a.pending_in + x.add_pending_in \
         FROM json_to_recordset($1::json) AS x(id text, add_balance bigint, add_pending_out bigint, add_pending_in bigint, \
         was_balance bigint, was_pending_out bigint, was_pending_in bigint, checked boolean) \
         WHERE a.id = x.id RETURNING a.id",
);

const SQL_TRANSFERS: (&str, &str) = (
    "INSERT INTO ledger_transfers (id, debit_account, credit_account, amount, currency, action, code, reference, pending_id, expires_at, created_at) VALUES (:id, :debit_account, :credit_account, :amount, :currency, :action, :code, :reference, :pending_id, :expires_at, :created_at)",
    "INSERT INTO ledger_transfers (id, debit_account, credit_account, amount, currency, action, code, reference, pending_id, expires_at, created_at) \
         SELECT id, debit_account, credit_account, amount, currency, action, code, reference, pending_id, expires_at, created_at \
         FROM json_to_recordset($1::json) AS x(id text, debit_account text, credit_account text, amount bigint, currency text, \
         action text, code text, reference text, pending_id text, expires_at bigint, created_at bigint)",
);

const SQL_NEW_PAYMENTS: (&str, &str) = (
    "INSERT INTO payments (id, merchant_id, store_id, user_id, method, source, qr_id, order_id, status, amount, currency, amount_captured, amount_refunded, fee, fee_refunded, fee_bps, hold_id, hold_expires_at, business_day, staff_id, description, created_at, updated_at, coupon_id, discount, member_discount, member_tier) VALUES (:id, :merchant_id, :store_id, :user_id, :method, :source, :qr_id, :order_id, :status, :amount, :currency, :amount_captured, :amount_refunded, :fee, :fee_refunded, :fee_bps, :hold_id, :hold_expires_at, :business_day, :staff_id, :description, :created_at, :updated_at, :coupon_id, :discount, :member_discount, :member_tier)",
    "INSERT INTO payments (id, merchant_id, store_id, user_id, method, source, qr_id, order_id, status, amount, currency, \
         amount_captured, amount_refunded, fee, fee_refunded, fee_bps, hold_id, hold_expires_at, business_day, staff_id, description, created_at, updated_at, coupon_id, discount, member_discount, member_tier) \
         SELECT id, merchant_id, store_id, user_id, method, source, qr_id, order_id, status, amount, currency, amount_captured, amount_refunded, \
         fee, fee_refunded, fee_bps, hold_id, hold_expires_at, business_day, staff_id, description, created_at, updated_at, coupon_id, discount, member_discount, member_tier \
         FROM json_to_recordset($1::json) AS x(id text, merchant_id text, store_id text, user_id text, method text, source text, qr_id text, \
         order_id text, status text, amount bigint, currency text, amount_captured bigint, amount_refunded bigint, fee bigint, fee_refunded bigint, \
         fee_bps bigint, hold_id text, hold_expires_at bigint, business_day text, staff_id text, description text, created_at bigint, updated_at bigint, coupon_id text, discount bigint, \
         member_discount bigint, member_tier text)",
);

const SQL_CHANGED_PAYMENTS: (&str, &str) = (
    "UPDATE payments SET status = :status, amount_captured = :amount_captured, amount_refunded = :amount_refunded, fee = :fee, fee_refunded = :fee_refunded, updated_at = :updated_at WHERE id = :id",
    "UPDATE payments AS p SET status = x.status, amount_captured = x.amount_captured, amount_refunded = x.amount_refunded, \
         fee = x.fee, fee_refunded = x.fee_refunded, updated_at = x.updated_at \
         FROM json_to_recordset($1::json) AS x(id text, status text, amount_captured bigint, amount_refunded bigint, fee bigint, \
         fee_refunded bigint, updated_at bigint) WHERE p.id = x.id",
);

const SQL_REFUNDS: (&str, &str) = (
    "INSERT INTO refunds (id, payment_id, merchant_id, amount, fee_returned, currency, reason, status, business_day, staff_id, created_at) VALUES (:id, :payment_id, :merchant_id, :amount, :fee_returned, :currency, :reason, :status, :business_day, :staff_id, :created_at)",
    "INSERT INTO refunds (id, payment_id, merchant_id, amount, fee_returned, currency, reason, status, business_day, staff_id, created_at) \
         SELECT id, payment_id, merchant_id, amount, fee_returned, currency, reason, status, business_day, staff_id, created_at \
         FROM json_to_recordset($1::json) AS x(id text, payment_id text, merchant_id text, amount bigint, fee_returned bigint, currency text, \
         reason text, status text, business_day text, staff_id text, created_at bigint)",
);

const SQL_MOVEMENTS: (&str, &str) = (
    "INSERT INTO wallet_movements (id, user_id, kind, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at, refund_of, amount_refunded) VALUES (:id, :user_id, :kind, :provider, :provider_ref, :amount, :currency, :status, :hold_id, :request_key, :created_at, :refund_of, :amount_refunded)",
    "INSERT INTO wallet_movements (id, user_id, kind, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at, refund_of, amount_refunded) \
         SELECT id, user_id, kind, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at, refund_of, amount_refunded \
         FROM json_to_recordset($1::json) AS x(id text, user_id text, kind text, provider text, provider_ref text, amount bigint, \
         currency text, status text, hold_id text, request_key text, created_at bigint, refund_of text, amount_refunded bigint)",
);

const SQL_CHANGED_MOVEMENTS: (&str, &str) = (
    "UPDATE wallet_movements SET status = :status, provider_ref = :provider_ref, amount_refunded = :amount_refunded WHERE id = :id",
    "UPDATE wallet_movements AS m SET status = x.status, provider_ref = x.provider_ref, amount_refunded = x.amount_refunded \
         FROM json_to_recordset($1::json) AS x(id text, status text, provider_ref text, amount_refunded bigint) WHERE m.id = x.id",
);

const SQL_NEW_PAYOUTS: (&str, &str) = (
    "INSERT INTO payouts (id, merchant_id, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at) VALUES (:id, :merchant_id, :provider, :provider_ref, :amount, :currency, :status, :hold_id, :request_key, :created_at)",
    "INSERT INTO payouts (id, merchant_id, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at) \
         SELECT id, merchant_id, provider, provider_ref, amount, currency, status, hold_id, request_key, created_at \
         FROM json_to_recordset($1::json) AS x(id text, merchant_id text, provider text, provider_ref text, amount bigint, \
         currency text, status text, hold_id text, request_key text, created_at bigint)",
);

const SQL_CHANGED_PAYOUTS: (&str, &str) = (
    "UPDATE payouts SET status = :status, provider_ref = :provider_ref WHERE id = :id",
    "UPDATE payouts AS p SET status = x.status, provider_ref = x.provider_ref \
         FROM json_to_recordset($1::json) AS x(id text, status text, provider_ref text) WHERE p.id = x.id",
);

const SQL_PAY_CODES: (&str, &str) = (
    "UPDATE pay_codes SET used_at = :used_at, used_by = :used_by WHERE code_hash = :code_hash AND used_at IS NULL",
    "UPDATE pay_codes AS c SET used_at = x.used_at, used_by = x.used_by \
         FROM json_to_recordset($1::json) AS x(code_hash text, used_at bigint, used_by text) \
         WHERE c.code_hash = x.code_hash AND c.used_at IS NULL",
);

const SQL_EVENTS: (&str, &str) = (
    "INSERT INTO events (id, merchant_id, type, data, created_at) VALUES (:id, :merchant_id, :type, :data, :created_at)",
    "INSERT INTO events (id, merchant_id, type, data, created_at) \
         SELECT id, merchant_id, type, data, created_at \
         FROM json_to_recordset($1::json) AS x(id text, merchant_id text, type text, data text, created_at bigint)",
);

const SQL_IDEM: (&str, &str) = (
    "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) VALUES (:scope, :key, :request_hash, :status, :body, :created_at)",
    "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) \
         SELECT scope, key, request_hash, status, body, created_at \
         FROM json_to_recordset($1::json) AS x(scope text, key text, request_hash text, status bigint, body text, created_at bigint)",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's one statement reads each of its parameters once, in order, and each part
    /// reads as many as it has columns.
    #[test]
    fn the_deferred_writes_read_consecutive_arrays() {
        let w = postgres_writes().unwrap();
        let columns: usize = w.parts.iter().map(Vec::len).sum();
        assert_eq!(w.parts.len(), DEFERRED.len());
        let mut params: Vec<usize> = Vec::new();
        // The final check reads the balances' ids again.
        let (ctes, check) = w.sql.rsplit_once(" SELECT o2o_accounts_written(").unwrap();
        assert!(check.contains("::text[]))"), "{check}");
        let mut rest = ctes;
        while let Some(at) = rest.find('$') {
            let tail = &rest[at + 1..];
            let digits = tail.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                params.push(tail[..digits].parse().unwrap());
            }
            rest = &tail[digits..];
        }
        assert_eq!(params, (1..=columns).collect::<Vec<_>>(), "{}", w.sql);
        assert!(!w.sql.contains("json"), "{}", w.sql);
    }
}
