//! Orders' SQL.

use super::model::{OrderRow, OrderSettings};
use crate::db::{Db, DbResult, Tx, Value, query};

/// Orders by id (a JSON array), locked for the batch on PostgreSQL.
pub async fn for_update_by_ids(tx: &mut Tx, ids_json: String) -> DbResult<Vec<OrderRow>> {
    tx.fetch_all_for(
        "SELECT * FROM orders WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT * FROM orders WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        vec![Value::from(ids_json)],
    )
    .await
}

/// The open orders of these tables (a JSON array of table ids), locked on PostgreSQL.
pub async fn for_update_by_tables(tx: &mut Tx, tables_json: String) -> DbResult<Vec<OrderRow>> {
    tx.fetch_all_for(
        "SELECT * FROM orders WHERE active_table IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT * FROM orders WHERE active_table IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        vec![Value::from(tables_json)],
    )
    .await
}

/// Writes orders whole: new ones inserted, changed ones updated (SQLite, PostgreSQL); one of
/// the batch's deferred writes.
pub(crate) const UPSERT: (&str, &str) = (
    "INSERT INTO orders (id, merchant_id, store_id, channel, status, table_id, active_table, user_id, currency, items, discounts, subtotal, discount_total, delivery_fee, total, amount_paid, amount_refunded, payments, delivery, pickup_at, promised_at, pickup_number, note, reserve_until, cancel_reason, placed_at, paid_at, ready_at, completed_at, canceled_at, created_at, updated_at) VALUES (:id, :merchant_id, :store_id, :channel, :status, :table_id, :active_table, :user_id, :currency, :items, :discounts, :subtotal, :discount_total, :delivery_fee, :total, :amount_paid, :amount_refunded, :payments, :delivery, :pickup_at, :promised_at, :pickup_number, :note, :reserve_until, :cancel_reason, :placed_at, :paid_at, :ready_at, :completed_at, :canceled_at, :created_at, :updated_at) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, active_table = excluded.active_table, items = excluded.items, discounts = excluded.discounts, subtotal = excluded.subtotal, discount_total = excluded.discount_total, delivery_fee = excluded.delivery_fee, total = excluded.total, amount_paid = excluded.amount_paid, amount_refunded = excluded.amount_refunded, payments = excluded.payments, reserve_until = excluded.reserve_until, cancel_reason = excluded.cancel_reason, placed_at = excluded.placed_at, paid_at = excluded.paid_at, ready_at = excluded.ready_at, completed_at = excluded.completed_at, canceled_at = excluded.canceled_at, updated_at = excluded.updated_at",
    "INSERT INTO orders (id, merchant_id, store_id, channel, status, table_id, active_table, user_id, currency, items, discounts, \
         subtotal, discount_total, delivery_fee, total, amount_paid, amount_refunded, payments, delivery, pickup_at, promised_at, \
         pickup_number, note, reserve_until, cancel_reason, placed_at, paid_at, ready_at, completed_at, canceled_at, created_at, updated_at) \
         SELECT id, merchant_id, store_id, channel, status, table_id, active_table, user_id, currency, items, discounts, \
         subtotal, discount_total, delivery_fee, total, amount_paid, amount_refunded, payments, delivery, pickup_at, promised_at, \
         pickup_number, note, reserve_until, cancel_reason, placed_at, paid_at, ready_at, completed_at, canceled_at, created_at, updated_at \
         FROM json_to_recordset($1::json) AS x(id text, merchant_id text, store_id text, channel text, status text, table_id text, \
         active_table text, user_id text, currency text, items text, discounts text, subtotal bigint, discount_total bigint, \
         delivery_fee bigint, total bigint, amount_paid bigint, amount_refunded bigint, payments text, delivery text, pickup_at bigint, \
         promised_at bigint, pickup_number text, note text, reserve_until bigint, cancel_reason text, placed_at bigint, paid_at bigint, \
         ready_at bigint, completed_at bigint, canceled_at bigint, created_at bigint, updated_at bigint) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, active_table = EXCLUDED.active_table, items = EXCLUDED.items, \
         discounts = EXCLUDED.discounts, subtotal = EXCLUDED.subtotal, discount_total = EXCLUDED.discount_total, \
         delivery_fee = EXCLUDED.delivery_fee, total = EXCLUDED.total, amount_paid = EXCLUDED.amount_paid, \
         amount_refunded = EXCLUDED.amount_refunded, payments = EXCLUDED.payments, reserve_until = EXCLUDED.reserve_until, \
         cancel_reason = EXCLUDED.cancel_reason, placed_at = EXCLUDED.placed_at, paid_at = EXCLUDED.paid_at, \
         ready_at = EXCLUDED.ready_at, completed_at = EXCLUDED.completed_at, canceled_at = EXCLUDED.canceled_at, \
         updated_at = EXCLUDED.updated_at",
);

/// Gives a guest's orders to the account it logged into (the sequencer never rewrites
/// `user_id`, so this cannot be undone by a batch in flight).
pub async fn merge_guest(tx: &mut crate::db::Tx, from: &str, into: &str) -> DbResult<u64> {
    tx.execute(
        query("UPDATE orders SET user_id = $1 WHERE user_id = $2")
            .bind(into)
            .bind(from),
    )
    .await
}

pub async fn get(db: &Db, id: &str) -> DbResult<Option<OrderRow>> {
    db.fetch_optional(query("SELECT * FROM orders WHERE id = $1").bind(id))
        .await
}

/// The open order of a table, if any.
pub async fn open_at_table(db: &Db, table_id: &str) -> DbResult<Option<OrderRow>> {
    db.fetch_optional(query("SELECT * FROM orders WHERE active_table = $1").bind(table_id))
        .await
}

/// A consumer's orders, newest first.
pub async fn of_user(
    db: &Db,
    user_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<OrderRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM orders WHERE user_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY user_id DESC, id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before.map(str::to_owned))
        .bind(limit),
    )
    .await
}

/// A store's orders since `since` (UTC microseconds), oldest first, optionally of one status.
pub async fn of_store(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    since: i64,
    limit: i64,
) -> DbResult<Vec<OrderRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM orders WHERE store_id = $1 AND merchant_id = $2 AND created_at >= $3 \
             ORDER BY store_id, created_at LIMIT $4",
        )
        .bind(store_id)
        .bind(merchant_id)
        .bind(since)
        .bind(limit),
    )
    .await
}

/// A store's unfinished order with this pickup number.
pub async fn by_pickup_number(db: &Db, store_id: &str, number: &str) -> DbResult<Vec<OrderRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM orders WHERE store_id = $1 AND pickup_number = $2 \
             AND status IN ('placed', 'accepted', 'preparing', 'ready') ORDER BY store_id, created_at",
        )
        .bind(store_id)
        .bind(number),
    )
    .await
}

/// Unpaid orders whose reservation lapsed.
pub async fn lapsed(db: &Db, now: i64, limit: i64) -> DbResult<Vec<(String, String)>> {
    db.fetch_all(
        query(
            "SELECT o.id, s.timezone FROM orders o JOIN stores s ON s.id = o.store_id \
             WHERE o.reserve_until IS NOT NULL AND o.reserve_until <= $1 ORDER BY o.reserve_until LIMIT $2",
        )
        .bind(now)
        .bind(limit),
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct SettingsRow {
    delivery_fee: i64,
    min_order: i64,
    promise_minutes: Option<i64>,
    prep_minutes: i64,
}

pub async fn settings(db: &Db, store_id: &str) -> DbResult<OrderSettings> {
    let row: Option<SettingsRow> = db
        .fetch_optional(
            query(
                "SELECT delivery_fee, min_order, promise_minutes, prep_minutes FROM order_settings WHERE store_id = $1",
            )
            .bind(store_id),
        )
        .await?;
    Ok(row
        .map(|r| OrderSettings {
            delivery_fee: r.delivery_fee,
            min_order: r.min_order,
            promise_minutes: r.promise_minutes,
            prep_minutes: r.prep_minutes,
        })
        .unwrap_or_default())
}

pub async fn put_settings(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    s: &OrderSettings,
    now: i64,
) -> DbResult<()> {
    db.execute(
        query(
            "INSERT INTO order_settings (store_id, merchant_id, delivery_fee, min_order, promise_minutes, prep_minutes, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (store_id) DO UPDATE SET delivery_fee = excluded.delivery_fee, \
             min_order = excluded.min_order, promise_minutes = excluded.promise_minutes, prep_minutes = excluded.prep_minutes, \
             updated_at = excluded.updated_at",
        )
        .bind(store_id)
        .bind(merchant_id)
        .bind(s.delivery_fee)
        .bind(s.min_order)
        .bind(s.promise_minutes)
        .bind(s.prep_minutes)
        .bind(now),
    )
    .await?;
    Ok(())
}
