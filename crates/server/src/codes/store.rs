//! Codes' SQL.

use crate::db::{Db, DbResult, MerchantScope, Tx, query};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct QrRow {
    pub id: String,
    pub short: String,
    pub merchant_id: String,
    pub store_id: String,
    pub table_id: Option<String>,
    pub product_id: Option<String>,
    pub kind: String,
    pub target: Option<String>,
    pub status: String,
    pub replaced_by: Option<String>,
    pub created_at: i64,
}

pub struct NewQr<'a> {
    pub id: &'a str,
    pub short: &'a str,
    pub store_id: &'a str,
    pub table_id: Option<&'a str>,
    pub product_id: Option<&'a str>,
    pub kind: &'a str,
    pub target: Option<&'a str>,
    pub now: i64,
}

pub async fn insert_qr(tx: &mut Tx, scope: &MerchantScope, q: NewQr<'_>) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO qr_codes (id, short, merchant_id, store_id, table_id, product_id, kind, target, status, replaced_by, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', NULL, $9, NULL)",
        )
        .bind(q.id)
        .bind(q.short)
        .bind(scope.merchant_id())
        .bind(q.store_id)
        .bind(q.table_id)
        .bind(q.product_id)
        .bind(q.kind)
        .bind(q.target)
        .bind(q.now),
    )
    .await
    .map(drop)
}

pub async fn qr_scoped(db: &Db, scope: &MerchantScope, id: &str) -> DbResult<Option<QrRow>> {
    const SQL: &str = "SELECT id, short, merchant_id, store_id, table_id, product_id, kind, target, status, replaced_by, created_at \
        FROM qr_codes WHERE id = $1 AND merchant_id = $2";
    db.fetch_optional(query(SQL).bind(id).bind(scope.merchant_id()))
        .await
}

pub async fn qr_scoped_tx(tx: &mut Tx, scope: &MerchantScope, id: &str) -> DbResult<Option<QrRow>> {
    const SQL: &str = "SELECT id, short, merchant_id, store_id, table_id, product_id, kind, target, status, replaced_by, created_at \
        FROM qr_codes WHERE id = $1 AND merchant_id = $2";
    tx.fetch_optional(query(SQL).bind(id).bind(scope.merchant_id()))
        .await
}

pub async fn list_qr(
    db: &Db,
    scope: &MerchantScope,
    store_id: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<QrRow>> {
    const SQL: &str = "SELECT id, short, merchant_id, store_id, table_id, product_id, kind, target, status, replaced_by, created_at \
        FROM qr_codes WHERE merchant_id = $1 AND ($2 IS NULL OR store_id = $2) AND ($3 IS NULL OR status = $3) \
        AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5";
    db.fetch_all(
        query(SQL)
            .bind(scope.merchant_id())
            .bind(store_id)
            .bind(status)
            .bind(cursor)
            .bind(limit),
    )
    .await
}

/// The active code of a kind at a store (and table), if there is one.
pub async fn active_for(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    kind: &str,
    table_id: Option<&str>,
) -> DbResult<Option<QrRow>> {
    const SQL: &str = "SELECT id, short, merchant_id, store_id, table_id, product_id, kind, target, status, replaced_by, created_at \
        FROM qr_codes WHERE merchant_id = $1 AND store_id = $2 AND kind = $3 AND status = 'active' \
        AND ($4 IS NULL OR table_id = $4) ORDER BY id DESC LIMIT 1";
    tx.fetch_optional(
        query(SQL)
            .bind(scope.merchant_id())
            .bind(store_id)
            .bind(kind)
            .bind(table_id),
    )
    .await
}

pub async fn revoke(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    replaced_by: Option<&str>,
    now: i64,
) -> DbResult<u64> {
    tx.touches(crate::db::Touched::CODES);
    tx.execute(
        query(
            "UPDATE qr_codes SET status = 'revoked', revoked_at = $1, replaced_by = COALESCE($2, replaced_by) \
             WHERE id = $3 AND merchant_id = $4 AND status = 'active'",
        )
        .bind(now)
        .bind(replaced_by)
        .bind(id)
        .bind(scope.merchant_id()),
    )
    .await
}

/// What resolving a printed code needs, in one read.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ResolvedRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub product_id: Option<String>,
    pub target: Option<String>,
    pub merchant_id: String,
    pub merchant_name: String,
    pub merchant_verified: bool,
    pub merchant_mode: String,
    pub merchant_fee_bps: i64,
    pub store_id: String,
    pub table_id: Option<String>,
    pub table_label: Option<String>,
    pub store_name: String,
    pub store_address: String,
    pub store_lat: f64,
    pub store_lng: f64,
    pub store_timezone: String,
    pub store_opening_hours: String,
    pub store_delivery_radius_m: i64,
    pub store_fence_radius_m: i64,
    pub store_created_at: i64,
}

impl ResolvedRow {
    /// Whether the code's merchant takes payments (see [`crate::merchants::store::takes_payments`]).
    pub fn merchant_takes_payments(&self) -> bool {
        crate::merchants::store::takes_payments(self.merchant_verified, &self.merchant_mode)
    }
}

pub async fn resolve(db: &Db, short: &str) -> DbResult<Option<ResolvedRow>> {
    const SQL: &str = "SELECT q.id, q.kind, q.status, q.product_id, q.target, q.merchant_id, m.name AS merchant_name, \
        m.verified AS merchant_verified, m.mode AS merchant_mode, m.fee_bps AS merchant_fee_bps, q.store_id, q.table_id, t.label AS table_label, \
        s.name AS store_name, s.address AS store_address, s.lat AS store_lat, s.lng AS store_lng, s.timezone AS store_timezone, \
        s.opening_hours AS store_opening_hours, s.delivery_radius_m AS store_delivery_radius_m, \
        s.fence_radius_m AS store_fence_radius_m, s.created_at AS store_created_at \
        FROM qr_codes q JOIN merchants m ON m.id = q.merchant_id JOIN stores s ON s.id = q.store_id \
        LEFT JOIN store_tables t ON t.id = q.table_id \
        WHERE q.short = $1";
    db.fetch_optional(query(SQL).bind(short)).await
}

pub async fn insert_pay_code(
    tx: &mut Tx,
    code_hash: &str,
    user_id: &str,
    source: &str,
    valid_from: i64,
    expires_at: i64,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO pay_codes (code_hash, user_id, source, valid_from, expires_at, used_at, used_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(source)
        .bind(valid_from)
        .bind(expires_at)
        .bind(now),
    )
    .await
    .map(drop)
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct PayCodeRow {
    pub user_id: String,
    pub source: String,
    pub valid_from: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Marks a pay code used if it is usable now; true when this call won it.
pub async fn use_pay_code(tx: &mut Tx, code_hash: &str, by: &str, now: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            query(
                "UPDATE pay_codes SET used_at = $1, used_by = $2 \
                 WHERE code_hash = $3 AND used_at IS NULL AND valid_from <= $1 AND expires_at > $1",
            )
            .bind(now)
            .bind(by)
            .bind(code_hash),
        )
        .await?
        == 1)
}

pub async fn pay_code(tx: &mut Tx, code_hash: &str) -> DbResult<Option<PayCodeRow>> {
    tx.fetch_optional(
        query("SELECT user_id, source, valid_from, expires_at, used_at FROM pay_codes WHERE code_hash = $1").bind(code_hash),
    )
    .await
}

/// Inserts an issued token in the caller's transaction. With `slot` (see migration 0015) the
/// token takes it, and false is answered, nothing inserted, when another token holds it.
#[allow(clippy::too_many_arguments)]
pub async fn insert_token(
    tx: &mut Tx,
    slot: Option<&str>,
    nonce: &str,
    kind: &str,
    subject: &str,
    merchant_id: Option<&str>,
    store_id: Option<&str>,
    user_id: Option<&str>,
    key_id: u32,
    expires_at: i64,
    now: i64,
) -> DbResult<bool> {
    Ok(tx
        .execute(
            query(
                "INSERT INTO issued_tokens (nonce, kind, subject, merchant_id, store_id, user_id, key_id, expires_at, used_at, used_by, created_at, slot) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10) ON CONFLICT (slot) DO NOTHING",
            )
            .bind(nonce)
            .bind(kind)
            .bind(subject)
            .bind(merchant_id)
            .bind(store_id)
            .bind(user_id)
            .bind(i64::from(key_id))
            .bind(expires_at)
            .bind(now)
            .bind(slot),
        )
        .await?
        == 1)
}

/// Takes `slot` from the token `nonce` (one that can no longer be shown), so a new token can
/// take it; nothing when the slot moved on meanwhile. A replaced token that was still unused
/// is spent at `now` (`used_by` "replaced"), so an order never has two codes that scan.
pub async fn free_slot(tx: &mut Tx, slot: &str, nonce: &str, now: i64) -> DbResult<u64> {
    tx.execute(
        query(
            "UPDATE issued_tokens SET slot = NULL, used_at = COALESCE(used_at, $3), \
             used_by = CASE WHEN used_at IS NULL THEN 'replaced' ELSE used_by END \
             WHERE slot = $1 AND nonce = $2",
        )
        .bind(slot)
        .bind(nonce)
        .bind(now),
    )
    .await
}

/// The token holding `slot`, if any.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SlotRow {
    pub nonce: String,
    pub user_id: Option<String>,
    pub key_id: Option<i64>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn slot_holder(db: &Db, slot: &str) -> DbResult<Option<SlotRow>> {
    db.fetch_optional(
        query(
            "SELECT nonce, user_id, key_id, expires_at, used_at FROM issued_tokens WHERE slot = $1",
        )
        .bind(slot),
    )
    .await
}

/// The latest token of `kind` issued for `subject` to `user_id`: what is needed to sign it again.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct KeptTokenRow {
    pub nonce: String,
    pub key_id: Option<i64>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn latest_token(
    db: &Db,
    kind: &str,
    subject: &str,
    user_id: &str,
) -> DbResult<Option<KeptTokenRow>> {
    db.fetch_optional(
        query(
            "SELECT nonce, key_id, expires_at, used_at FROM issued_tokens \
             WHERE subject = $1 AND kind = $2 AND user_id = $3 \
             ORDER BY created_at DESC, nonce DESC LIMIT 1",
        )
        .bind(subject)
        .bind(kind)
        .bind(user_id),
    )
    .await
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct TokenRow {
    pub merchant_id: Option<String>,
    pub store_id: Option<String>,
    pub user_id: Option<String>,
    pub used_at: Option<i64>,
}

pub async fn token(tx: &mut Tx, nonce: &str) -> DbResult<Option<TokenRow>> {
    tx.fetch_optional(
        query("SELECT merchant_id, store_id, user_id, used_at FROM issued_tokens WHERE nonce = $1")
            .bind(nonce),
    )
    .await
}

/// An issued token, read outside a transaction (a check that writes nothing).
pub async fn token_read(db: &Db, nonce: &str) -> DbResult<Option<TokenRow>> {
    db.fetch_optional(
        query("SELECT merchant_id, store_id, user_id, used_at FROM issued_tokens WHERE nonce = $1")
            .bind(nonce),
    )
    .await
}

pub async fn use_token(tx: &mut Tx, nonce: &str, by: &str, now: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            query("UPDATE issued_tokens SET used_at = $1, used_by = $2 WHERE nonce = $3 AND used_at IS NULL")
                .bind(now)
                .bind(by)
                .bind(nonce),
        )
        .await?
        == 1)
}
