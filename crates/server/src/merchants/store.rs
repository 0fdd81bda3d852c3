//! Merchants' SQL. Every function reading merchant-owned rows takes the [`MerchantScope`].

use crate::db::{Db, DbResult, MerchantScope, Tx, query};

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub mode: String,
    pub verified: bool,
    pub created_at: i64,
    pub timezone: Option<String>,
}

pub async fn insert_merchant(
    tx: &mut Tx,
    id: &str,
    name: &str,
    mode: &str,
    verified: bool,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query("INSERT INTO merchants (id, name, mode, verified, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(name)
            .bind(mode)
            .bind(verified)
            .bind(now),
    )
    .await
    .map(drop)
}

pub async fn merchant(db: &Db, scope: &MerchantScope) -> DbResult<Option<MerchantRow>> {
    db.fetch_optional(
        query("SELECT id, name, mode, verified, created_at, timezone FROM merchants WHERE id = $1")
            .bind(scope.merchant_id()),
    )
    .await
}

/// Public facts about any merchant (name and verification are shown to consumers).
pub async fn merchant_public(db: &Db, id: &str) -> DbResult<Option<MerchantRow>> {
    db.fetch_optional(
        query("SELECT id, name, mode, verified, created_at, timezone FROM merchants WHERE id = $1")
            .bind(id),
    )
    .await
}

/// Sets (or, with `None`, clears) the time zone of the merchant's days; answers the rows changed.
pub async fn set_timezone(db: &Db, scope: &MerchantScope, timezone: Option<&str>) -> DbResult<u64> {
    db.execute(
        query("UPDATE merchants SET timezone = $1 WHERE id = $2")
            .bind(timezone)
            .bind(scope.merchant_id()),
    )
    .await
}

pub async fn set_verified(tx: &mut Tx, id: &str, verified: bool) -> DbResult<u64> {
    tx.touches(crate::db::Touched::CODES);
    tx.execute(
        query("UPDATE merchants SET verified = $1 WHERE id = $2")
            .bind(verified)
            .bind(id),
    )
    .await
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct StaffRow {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub role: String,
    pub created_at: i64,
}

pub async fn list_staff(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<StaffRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, email, role, created_at FROM accounts \
             WHERE merchant_id = $1 AND kind = 'staff' AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(scope.merchant_id())
        .bind(cursor)
        .bind(limit),
    )
    .await
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub secret_last4: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_api_key(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    name: &str,
    secret_hash: &str,
    last4: &str,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO api_keys (id, merchant_id, name, secret_hash, secret_last4, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(id)
        .bind(scope.merchant_id())
        .bind(name)
        .bind(secret_hash)
        .bind(last4)
        .bind(now),
    )
    .await
    .map(drop)
}

pub async fn list_api_keys(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<ApiKeyRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, name, secret_last4, created_at, revoked_at FROM api_keys \
             WHERE merchant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(scope.merchant_id())
        .bind(cursor)
        .bind(limit),
    )
    .await
}

pub async fn revoke_api_key(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    now: i64,
) -> DbResult<Option<ApiKeyRow>> {
    tx.touches(crate::db::Touched::SESSIONS);
    tx.execute(
        query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND merchant_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(scope.merchant_id()),
    )
    .await?;
    tx.fetch_optional(
        query(
            "SELECT id, merchant_id, name, secret_last4, created_at, revoked_at FROM api_keys \
             WHERE id = $1 AND merchant_id = $2",
        )
        .bind(id)
        .bind(scope.merchant_id()),
    )
    .await
}

/// What payments need to know of a merchant.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct PaymentTerms {
    pub fee_bps: i64,
    pub verified: bool,
    pub mode: String,
    pub name: String,
}

/// Whether a merchant takes payments through o2o: verified by the operator and trading (a
/// listing merchant shows itself and takes none, not even cash at the counter).
pub fn takes_payments(verified: bool, mode: &str) -> bool {
    verified && mode == super::model::MerchantMode::Trading.as_str()
}

impl PaymentTerms {
    /// See [`takes_payments`].
    pub fn takes_payments(&self) -> bool {
        takes_payments(self.verified, &self.mode)
    }
}

pub async fn payment_terms(db: &Db, merchant_id: &str) -> DbResult<Option<PaymentTerms>> {
    db.fetch_optional(
        query("SELECT fee_bps, verified, mode, name FROM merchants WHERE id = $1")
            .bind(merchant_id),
    )
    .await
}

pub async fn set_fee(tx: &mut Tx, id: &str, fee_bps: i64) -> DbResult<u64> {
    tx.touches(crate::db::Touched::CODES);
    tx.execute(
        query("UPDATE merchants SET fee_bps = $1 WHERE id = $2")
            .bind(fee_bps)
            .bind(id),
    )
    .await
}
