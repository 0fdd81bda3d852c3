//! WiFi's SQL: a store's key (hashed) and the grants its router checks.

use crate::db::{Db, DbResult, MerchantScope, Tx, query};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct KeyRow {
    pub store_id: String,
    pub merchant_id: String,
    pub secret_last4: String,
    pub auth_url: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct GrantRow {
    pub id: String,
    pub user_id: String,
    pub tok_hash: Option<String>,
    pub expires_at: i64,
}

/// Sets the store's key, replacing any earlier one (which stops working at once).
pub async fn put_key(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    secret_hash: &str,
    last4: &str,
    auth_url: Option<&str>,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO wifi_keys (store_id, merchant_id, secret_hash, secret_last4, auth_url, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (store_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
             secret_last4 = excluded.secret_last4, auth_url = excluded.auth_url, created_at = excluded.created_at",
        )
        .bind(store_id)
        .bind(scope.merchant_id())
        .bind(secret_hash)
        .bind(last4)
        .bind(auth_url)
        .bind(now),
    )
    .await
    .map(drop)
}

pub async fn key_scoped(
    db: &Db,
    scope: &MerchantScope,
    store_id: &str,
) -> DbResult<Option<KeyRow>> {
    db.fetch_optional(
        query(
            "SELECT store_id, merchant_id, secret_last4, auth_url, created_at FROM wifi_keys \
             WHERE store_id = $1 AND merchant_id = $2",
        )
        .bind(store_id)
        .bind(scope.merchant_id()),
    )
    .await
}

/// The store a key belongs to.
pub async fn key_by_hash(db: &Db, secret_hash: &str) -> DbResult<Option<KeyRow>> {
    db.fetch_optional(
        query(
            "SELECT store_id, merchant_id, secret_last4, auth_url, created_at FROM wifi_keys \
             WHERE secret_hash = $1",
        )
        .bind(secret_hash),
    )
    .await
}

/// The router's auth address of a store, when its merchant set one.
pub async fn auth_url(db: &Db, store_id: &str) -> DbResult<Option<String>> {
    Ok(db
        .fetch_optional::<(Option<String>,)>(
            query("SELECT auth_url FROM wifi_keys WHERE store_id = $1").bind(store_id),
        )
        .await?
        .and_then(|r| r.0))
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_grant(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    store_id: &str,
    user_id: &str,
    mac: Option<&str>,
    ip: Option<&str>,
    gateway: Option<&str>,
    tok_hash: Option<&str>,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO wifi_grants (id, merchant_id, store_id, user_id, client_mac, client_ip, gateway_id, \
             tok_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(merchant_id)
        .bind(store_id)
        .bind(user_id)
        .bind(mac)
        .bind(ip)
        .bind(gateway)
        .bind(tok_hash)
        .bind(now)
        .bind(expires_at),
    )
    .await
    .map(drop)
}

/// The device's grants at a store that have not expired by `now`, latest ending first (a few).
pub async fn live_grants(db: &Db, store_id: &str, mac: &str, now: i64) -> DbResult<Vec<GrantRow>> {
    db.fetch_all(
        query(
            "SELECT id, user_id, tok_hash, expires_at FROM wifi_grants \
             WHERE store_id = $1 AND client_mac = $2 AND expires_at > $3 ORDER BY expires_at DESC LIMIT 20",
        )
        .bind(store_id)
        .bind(mac)
        .bind(now),
    )
    .await
}
