//! Coupons' SQL.

use super::model::{CouponRow, TemplateRow};
use crate::db::{Db, DbResult, Tx, Value, query};

pub async fn insert_template(tx: &mut Tx, t: &TemplateRow) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO coupon_templates (id, merchant_id, name, kind, amount_off, percent_off, max_discount, product_id, \
             min_spend, currency, store_ids, channels, claim_starts_at, claim_ends_at, use_starts_at, use_ends_at, \
             valid_days_after_claim, total_stock, issued, per_consumer_limit, audience, stackable, created_at, updated_at, points_price) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
        )
        .bind(t.id.clone())
        .bind(t.merchant_id.clone())
        .bind(t.name.clone())
        .bind(t.kind.clone())
        .bind(t.amount_off)
        .bind(t.percent_off)
        .bind(t.max_discount)
        .bind(t.product_id.clone())
        .bind(t.min_spend)
        .bind(t.currency.clone())
        .bind(t.store_ids.clone())
        .bind(t.channels.clone())
        .bind(t.claim_starts_at)
        .bind(t.claim_ends_at)
        .bind(t.use_starts_at)
        .bind(t.use_ends_at)
        .bind(t.valid_days_after_claim)
        .bind(t.total_stock)
        .bind(t.issued)
        .bind(t.per_consumer_limit)
        .bind(t.audience.clone())
        .bind(t.stackable)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.points_price),
    )
    .await?;
    Ok(())
}

pub async fn template(db: &Db, id: &str) -> DbResult<Option<TemplateRow>> {
    db.fetch_optional(query("SELECT * FROM coupon_templates WHERE id = $1").bind(id))
        .await
}

pub async fn templates_of(
    db: &Db,
    merchant_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<TemplateRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM coupon_templates WHERE merchant_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY merchant_id DESC, id DESC LIMIT $3",
        )
        .bind(merchant_id)
        .bind(before.map(str::to_owned))
        .bind(limit),
    )
    .await
}

/// The coupon center's templates of these merchants: in their claim window and not past their
/// use window, claimed free (no points price), those in stock first and then the sold-out ones
/// (shown as sold out).
pub async fn center_templates_of(
    db: &Db,
    merchants_json: String,
    now: i64,
) -> DbResult<Vec<TemplateRow>> {
    db.fetch_all_for(
        "SELECT * FROM coupon_templates WHERE merchant_id IN (SELECT value FROM json_each($1)) \
         AND claim_starts_at <= $2 AND (claim_ends_at IS NULL OR claim_ends_at > $2) \
         AND (use_ends_at IS NULL OR use_ends_at > $2) AND points_price IS NULL \
         ORDER BY CASE WHEN issued < total_stock THEN 0 ELSE 1 END, id LIMIT 200",
        "SELECT * FROM coupon_templates WHERE merchant_id IN (SELECT json_array_elements_text($1::json)) \
         AND claim_starts_at <= $2 AND (claim_ends_at IS NULL OR claim_ends_at > $2) \
         AND (use_ends_at IS NULL OR use_ends_at > $2) AND points_price IS NULL \
         ORDER BY CASE WHEN issued < total_stock THEN 0 ELSE 1 END, id LIMIT 200",
        vec![Value::from(merchants_json), Value::from(now)],
    )
    .await
}

/// A merchant's templates priced in points, in their claim window now and not past their use
/// window (a coupon issued then would be expired already), cheapest first.
pub async fn exchangeable_of(
    db: &Db,
    merchant_id: &str,
    now: i64,
    limit: i64,
) -> DbResult<Vec<TemplateRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM coupon_templates WHERE merchant_id = $1 AND points_price IS NOT NULL \
             AND claim_starts_at <= $2 AND (claim_ends_at IS NULL OR claim_ends_at > $2) \
             AND (use_ends_at IS NULL OR use_ends_at > $2) \
             ORDER BY points_price, id LIMIT $3",
        )
        .bind(merchant_id)
        .bind(now)
        .bind(limit),
    )
    .await
}

/// The names of templates by id (a JSON array): (id, name).
pub async fn template_names(db: &Db, ids_json: String) -> DbResult<Vec<(String, String)>> {
    db.fetch_all_for(
        "SELECT id, name FROM coupon_templates WHERE id IN (SELECT value FROM json_each($1))",
        "SELECT id, name FROM coupon_templates WHERE id IN (SELECT json_array_elements_text($1::json))",
        vec![Value::from(ids_json)],
    )
    .await
}

/// Templates by id (a JSON array), locked for the batch on PostgreSQL.
pub async fn templates_for_update(tx: &mut Tx, ids_json: String) -> DbResult<Vec<TemplateRow>> {
    tx.fetch_all_for(
        "SELECT * FROM coupon_templates WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT * FROM coupon_templates WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        vec![Value::from(ids_json)],
    )
    .await
}

/// Coupons by id (a JSON array), locked for the batch on PostgreSQL.
pub async fn coupons_for_update(tx: &mut Tx, ids_json: String) -> DbResult<Vec<CouponRow>> {
    tx.fetch_all_for(
        "SELECT * FROM coupons WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT * FROM coupons WHERE id IN (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
        vec![Value::from(ids_json)],
    )
    .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct ClaimCount {
    pub template_id: String,
    pub user_id: String,
    pub n: i64,
}

/// How many of each template each consumer holds (pairs as a JSON array of `{"t", "u"}`).
pub async fn claim_counts(tx: &mut Tx, pairs_json: String) -> DbResult<Vec<ClaimCount>> {
    tx.fetch_all_for(
        "SELECT c.template_id, c.user_id, COUNT(*) AS n FROM coupons c \
         JOIN json_each($1) j ON c.template_id = json_extract(j.value, '$.t') AND c.user_id = json_extract(j.value, '$.u') \
         GROUP BY c.template_id, c.user_id",
        "SELECT c.template_id, c.user_id, CAST(COUNT(*) AS BIGINT) AS n FROM coupons c \
         JOIN json_to_recordset($1::json) AS j(t text, u text) ON c.template_id = j.t AND c.user_id = j.u \
         GROUP BY c.template_id, c.user_id",
        vec![Value::from(pairs_json)],
    )
    .await
}

/// Writes claimed or changed coupons whole.
pub async fn upsert_coupons(tx: &mut Tx, rows: &[serde_json::Value]) -> DbResult<u64> {
    tx.write_rows(
        rows,
        "INSERT INTO coupons (id, template_id, merchant_id, user_id, status, valid_from, valid_until, claimed_via, claimed_at, used_at, payment_id, order_id, discount) VALUES (:id, :template_id, :merchant_id, :user_id, :status, :valid_from, :valid_until, :claimed_via, :claimed_at, :used_at, :payment_id, :order_id, :discount) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, used_at = excluded.used_at, payment_id = excluded.payment_id, order_id = excluded.order_id, discount = excluded.discount",
        "INSERT INTO coupons (id, template_id, merchant_id, user_id, status, valid_from, valid_until, claimed_via, claimed_at, \
         used_at, payment_id, order_id, discount) \
         SELECT id, template_id, merchant_id, user_id, status, valid_from, valid_until, claimed_via, claimed_at, \
         used_at, payment_id, order_id, discount FROM json_to_recordset($1::json) AS x(id text, template_id text, \
         merchant_id text, user_id text, status text, valid_from bigint, valid_until bigint, claimed_via text, claimed_at bigint, \
         used_at bigint, payment_id text, order_id text, discount bigint) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, used_at = EXCLUDED.used_at, \
         payment_id = EXCLUDED.payment_id, order_id = EXCLUDED.order_id, discount = EXCLUDED.discount",
    )
    .await
}

/// Sets templates' issued counts (rows of `{"id", "issued"}`).
pub async fn set_issued(tx: &mut Tx, rows: &[serde_json::Value]) -> DbResult<u64> {
    tx.write_rows(
        rows,
        "UPDATE coupon_templates SET issued = :issued WHERE id = :id",
        "UPDATE coupon_templates AS t SET issued = j.issued FROM json_to_recordset($1::json) AS j(id text, issued bigint) \
         WHERE t.id = j.id",
    )
    .await
}

/// A consumer's coupons, newest first, with their templates.
pub async fn coupons_of(
    db: &Db,
    user_id: &str,
    before: Option<&str>,
    limit: i64,
) -> DbResult<Vec<CouponRow>> {
    db.fetch_all(
        query(
            "SELECT * FROM coupons WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY user_id DESC, id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before.map(str::to_owned))
        .bind(limit),
    )
    .await
}

/// How many coupons of a template a consumer holds.
pub async fn held(db: &Db, user_id: &str, template_id: &str) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            query(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM coupons WHERE template_id = $1 AND user_id = $2",
            )
            .bind(template_id)
            .bind(user_id),
        )
        .await?;
    Ok(n)
}

pub async fn coupon(db: &Db, id: &str) -> DbResult<Option<CouponRow>> {
    db.fetch_optional(query("SELECT * FROM coupons WHERE id = $1").bind(id))
        .await
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct StatsRow {
    pub used: i64,
    pub expired: i64,
    pub discount_given: i64,
}

pub async fn stats(db: &Db, template_id: &str, now: i64) -> DbResult<StatsRow> {
    db.fetch_one(
        query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'used' THEN 1 ELSE 0 END), 0) AS BIGINT) AS used, \
             CAST(COALESCE(SUM(CASE WHEN status <> 'used' AND valid_until IS NOT NULL AND valid_until <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired, \
             CAST(COALESCE(SUM(CASE WHEN status = 'used' THEN discount ELSE 0 END), 0) AS BIGINT) AS discount_given \
             FROM coupons WHERE template_id = $1",
        )
        .bind(template_id)
        .bind(now),
    )
    .await
}

/// What consumers paid in payments that used this template's coupons.
pub async fn sales(db: &Db, template_id: &str) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            query(
                "SELECT CAST(COALESCE(SUM(p.amount_captured - p.amount_refunded), 0) AS BIGINT) FROM payments p \
                 JOIN coupons c ON c.payment_id = p.id WHERE c.template_id = $1 AND c.status = 'used'",
            )
            .bind(template_id),
        )
        .await?;
    Ok(n)
}

/// Whether the consumer has paid this merchant before.
pub async fn shopped_at(db: &Db, user_id: &str, merchants_json: String) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db
        .fetch_all_for(
            "SELECT DISTINCT merchant_id FROM payments WHERE user_id = $1 AND status = 'succeeded' \
             AND merchant_id IN (SELECT value FROM json_each($2))",
            "SELECT DISTINCT merchant_id FROM payments WHERE user_id = $1 AND status = 'succeeded' \
             AND merchant_id IN (SELECT json_array_elements_text($2::json))",
            vec![Value::from(user_id.to_owned()), Value::from(merchants_json)],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
