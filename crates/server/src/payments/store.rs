//! Payments' SQL for reads (every write goes through the engine's batches).

use super::engine::{MovementRow, PaymentRow, PayoutRow};
use crate::db::{Db, DbResult, query};

/// The names a receipt shows: the merchant's and (if any) the store's.
pub async fn payee_names(
    db: &Db,
    merchant_id: &str,
    store_id: Option<&str>,
) -> DbResult<Option<(String, Option<String>)>> {
    db.fetch_optional(
        query(
            "SELECT m.name, s.name FROM merchants m \
             LEFT JOIN stores s ON s.id = $2 AND s.merchant_id = m.id WHERE m.id = $1",
        )
        .bind(merchant_id)
        .bind(store_id),
    )
    .await
}

/// A store's payments of one business day, newest first (the counter's list).
pub async fn payments_of_store_day(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    day: &str,
    limit: i64,
) -> DbResult<Vec<PaymentRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM payments WHERE merchant_id = $1 AND store_id = $2 AND business_day = $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(merchant_id)
        .bind(store_id)
        .bind(day)
        .bind(limit),
    )
    .await
}

pub async fn payment(db: &Db, id: &str) -> DbResult<Option<PaymentRow>> {
    db.fetch_optional(query("SELECT * FROM payments WHERE id = $1").bind(id))
        .await
}

pub async fn payments_of_merchant(
    db: &Db,
    merchant_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<PaymentRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM payments WHERE merchant_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(merchant_id)
        .bind(before)
        .bind(limit),
    )
    .await
}

pub async fn payments_of_user(
    db: &Db,
    user_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<PaymentRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM payments WHERE user_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before)
        .bind(limit),
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct Balances {
    pub balance: i64,
    pub pending_out: i64,
}

pub async fn account(db: &Db, id: &str) -> DbResult<Option<Balances>> {
    db.fetch_optional(
        query("SELECT balance, pending_out FROM ledger_accounts WHERE id = $1").bind(id),
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct EntryRow {
    pub id: String,
    pub debit_account: String,
    pub amount: i64,
    pub currency: String,
    pub action: String,
    pub code: String,
    pub reference: String,
    pub created_at: i64,
}

/// Transfers into or out of an account, newest first.
pub async fn entries(
    db: &Db,
    account_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<EntryRow>> {
    db.fetch_all(
        query(
            "SELECT id, debit_account, amount, currency, action, code, reference, created_at FROM ( \
               SELECT id, debit_account, amount, currency, action, code, reference, created_at FROM ledger_transfers \
                 WHERE debit_account = $1 AND ($2 IS NULL OR id < $2) \
               UNION ALL \
               SELECT id, debit_account, amount, currency, action, code, reference, created_at FROM ledger_transfers \
                 WHERE credit_account = $1 AND ($2 IS NULL OR id < $2) \
             ) t ORDER BY id DESC LIMIT $3",
        )
        .bind(account_id)
        .bind(before)
        .bind(limit),
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct DayTotals {
    pub currency: String,
    pub gross: i64,
    pub count: i64,
    pub fees: i64,
    pub cash: i64,
}

pub async fn day_payments(db: &Db, merchant_id: &str, day: &str) -> DbResult<Vec<DayTotals>> {
    db.fetch_all(
        query(
            "SELECT currency, CAST(COALESCE(SUM(amount_captured), 0) AS BIGINT) AS gross, CAST(COUNT(*) AS BIGINT) AS count, \
             CAST(COALESCE(SUM(fee), 0) AS BIGINT) AS fees, \
             CAST(COALESCE(SUM(CASE WHEN source = 'cash' THEN amount_captured ELSE 0 END), 0) AS BIGINT) AS cash \
             FROM payments WHERE merchant_id = $1 AND business_day = $2 AND amount_captured > 0 GROUP BY currency",
        )
        .bind(merchant_id)
        .bind(day),
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct DayRefunds {
    pub currency: String,
    pub refunds: i64,
    pub count: i64,
    pub fee_returned: i64,
}

pub async fn day_refunds(db: &Db, merchant_id: &str, day: &str) -> DbResult<Vec<DayRefunds>> {
    db.fetch_all(
        query(
            "SELECT currency, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS refunds, CAST(COUNT(*) AS BIGINT) AS count, \
             CAST(COALESCE(SUM(fee_returned), 0) AS BIGINT) AS fee_returned \
             FROM refunds WHERE merchant_id = $1 AND business_day = $2 GROUP BY currency",
        )
        .bind(merchant_id)
        .bind(day),
    )
    .await
}

/// A wallet movement by id.
pub async fn movement(db: &Db, id: &str) -> DbResult<Option<MovementRow>> {
    db.fetch_optional(query("SELECT * FROM wallet_movements WHERE id = $1").bind(id))
        .await
}

/// Wallet movements of `provider` still pending that began at or before `before`, by id (the
/// order they began in) after `after`, for the sweeper (see `service::sweep_movements`).
pub async fn unsettled_movements(
    db: &Db,
    provider: &str,
    before: i64,
    after: &str,
    limit: i64,
) -> DbResult<Vec<MovementRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM wallet_movements WHERE status = 'pending' AND created_at <= $1 AND provider = $2 \
             AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(before)
        .bind(provider)
        .bind(after)
        .bind(limit),
    )
    .await
}

/// A wallet movement or payout asked of the provider under a request's key (see
/// `service::through_bank`).
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct EarlierMove {
    pub id: String,
    /// `top_up`, `withdrawal` or `payout`.
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub provider_ref: Option<String>,
    /// A refund's top-up.
    pub refund_of: Option<String>,
}

/// The latest movement (`payout`: payout) of `account` asked under `request_key` since `since`,
/// one the bank did not make only if there is no other.
pub async fn earlier_move(
    db: &Db,
    payout: bool,
    account: &str,
    request_key: &str,
    since: i64,
) -> DbResult<Option<EarlierMove>> {
    let sql = if payout {
        "SELECT id, 'payout' AS kind, amount, currency, status, provider_ref, CAST(NULL AS TEXT) AS refund_of FROM payouts \
         WHERE merchant_id = $1 AND request_key = $2 AND created_at >= $3 ORDER BY status = 'failed', created_at DESC LIMIT 1"
    } else {
        "SELECT id, kind, amount, currency, status, provider_ref, refund_of FROM wallet_movements \
         WHERE user_id = $1 AND request_key = $2 AND created_at >= $3 ORDER BY status = 'failed', created_at DESC LIMIT 1"
    };
    db.fetch_optional(query(sql).bind(account).bind(request_key).bind(since))
        .await
}

/// Payouts of `provider` still pending that began at or before `before`, by id after `after`,
/// for the sweeper.
pub async fn unsettled_payouts(
    db: &Db,
    provider: &str,
    before: i64,
    after: &str,
    limit: i64,
) -> DbResult<Vec<PayoutRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM payouts WHERE status = 'pending' AND created_at <= $1 AND provider = $2 \
             AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(before)
        .bind(provider)
        .bind(after)
        .bind(limit),
    )
    .await
}

/// Holds past their expiry, for the sweeper.
pub async fn lapsed_holds(db: &Db, now: i64, limit: i64) -> DbResult<Vec<(String,)>> {
    db.fetch_all(
        query(
            "SELECT id FROM payments WHERE status = 'requires_capture' AND hold_expires_at <= $1 \
             ORDER BY hold_expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit),
    )
    .await
}

/// The ledger recomputed from its transfers, per account (see `o2o_ledger::book::AccountCheck`).
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct CheckRow {
    pub id: String,
    pub currency: String,
    pub no_overdraft: bool,
    pub balance: i64,
    pub pending_out: i64,
    pub pending_in: i64,
    pub credits: i64,
    pub debits: i64,
    pub open_out: i64,
    pub open_in: i64,
}

pub async fn ledger_checks(db: &Db) -> DbResult<Vec<CheckRow>> {
    // Posted money: `post` and `post_pending` transfers. Open holds: `pending` transfers with no
    // resolution yet.
    db.fetch_all(query(
        "WITH posted AS ( \
           SELECT debit_account AS acc, -amount AS delta FROM ledger_transfers WHERE action IN ('post', 'post_pending') \
           UNION ALL SELECT credit_account, amount FROM ledger_transfers WHERE action IN ('post', 'post_pending') \
         ), open_holds AS ( \
           SELECT p.debit_account, p.credit_account, p.amount FROM ledger_transfers p \
           WHERE p.action = 'pending' AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id) \
         ), sums AS (SELECT acc, SUM(delta) AS s FROM posted GROUP BY acc), \
         outs AS (SELECT debit_account AS acc, SUM(amount) AS s FROM open_holds GROUP BY debit_account), \
         ins AS (SELECT credit_account AS acc, SUM(amount) AS s FROM open_holds GROUP BY credit_account) \
         SELECT a.id, a.currency, a.no_overdraft, a.balance, a.pending_out, a.pending_in, \
           CAST(COALESCE(s.s, 0) AS BIGINT) AS credits, CAST(0 AS BIGINT) AS debits, \
           CAST(COALESCE(o.s, 0) AS BIGINT) AS open_out, CAST(COALESCE(i.s, 0) AS BIGINT) AS open_in \
         FROM ledger_accounts a LEFT JOIN sums s ON s.acc = a.id LEFT JOIN outs o ON o.acc = a.id \
         LEFT JOIN ins i ON i.acc = a.id ORDER BY a.id",
    ))
    .await
}

pub async fn transfer_count(db: &Db) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(query(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_transfers",
        ))
        .await?;
    Ok(n)
}

/// Posts or voids that do not match their hold: unknown hold, other accounts or currency, or
/// more posted than held (a hold resolved twice is prevented by a unique index, and checked
/// here too).
pub async fn bad_resolutions(db: &Db) -> DbResult<Vec<(String,)>> {
    db.fetch_all(query(
        "SELECT r.id FROM ledger_transfers r LEFT JOIN ledger_transfers p ON p.id = r.pending_id \
         WHERE r.action IN ('post_pending', 'void_pending') AND ( \
           p.id IS NULL OR p.action <> 'pending' OR p.debit_account <> r.debit_account \
           OR p.credit_account <> r.credit_account OR p.currency <> r.currency OR r.amount > p.amount \
           OR (r.action = 'void_pending' AND r.amount <> 0) \
           OR (SELECT COUNT(*) FROM ledger_transfers x WHERE x.pending_id = r.pending_id) > 1) \
         ORDER BY r.id",
    ))
    .await
}

/// Money moved twice for one business object: a payment charged twice, a refund or top-up
/// applied twice (transfer ids themselves are a primary key).
pub async fn duplicate_movements(db: &Db) -> DbResult<Vec<(String,)>> {
    db.fetch_all(query(
        "SELECT reference || ':' || code FROM ledger_transfers \
         WHERE code IN ('payment', 'payment_hold', 'cash_payment', 'refund', 'cash_refund', 'top_up', 'withdrawal', 'payment_capture', \
         'withdrawal_hold', 'withdrawal_released', 'payout', 'payout_hold', 'payout_released', \
         'top_up_refund', 'top_up_refund_hold', 'top_up_refund_released') \
         GROUP BY reference, code HAVING COUNT(*) > 1 ORDER BY 1",
    ))
    .await
}

/// Transfers naming an account that does not exist (there is no foreign key on this hot path).
pub async fn orphan_transfers(db: &Db) -> DbResult<Vec<(String,)>> {
    db.fetch_all(query(
        "SELECT t.id FROM ledger_transfers t \
         LEFT JOIN ledger_accounts d ON d.id = t.debit_account \
         LEFT JOIN ledger_accounts c ON c.id = t.credit_account \
         WHERE d.id IS NULL OR c.id IS NULL ORDER BY t.id LIMIT 100",
    ))
    .await
}
